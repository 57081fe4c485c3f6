"""Proving a running lab: acceptance checks, failover measurement, reports and evidence."""
