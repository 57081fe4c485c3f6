"""Providers run a lab: `local` (user-mode Linux, no hypervisor) is the default."""
