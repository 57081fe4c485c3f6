"""`invoke ami.*`: publish the AMI Packer built (copy, encrypt, tag, share, retire), list, prune."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from halab import paths
from halab.images import ami
from halab.tasks import existing_file, key_values, task

REGIONS_HELP = "comma-separated regions, e.g. eu-west-1,us-east-1"
RETAIN_HELP = "images of the family to keep per region, newest first (default 3)"
SHARED_HELP = "also retire images shared with other accounts"


def _source(manifest: str | None) -> ami.Source:
    given = existing_file(manifest, "manifest", "a Packer manifest.json") if manifest is not None else None
    return ami.source_from_manifest(given or paths.manifest())


@task(
    iterable=["kms_key"],
    help={
        "regions": REGIONS_HELP,
        "share": "comma-separated AWS account IDs (12 digits each) to share with",
        "kms_key": "REGION=KEY: the KMS key encrypting the copy in REGION, one of --regions (repeatable); "
        "default: the account's EBS key",
        "retain": RETAIN_HELP,
        "deprecate_days": "set the AMIs' deprecation time this many days from now",
        "include_shared": SHARED_HELP,
        "dry_run": "print the plan, change nothing",
        "skip_evidence": "publish even though no passing acceptance run is recorded for the image (says so)",
        "manifest": "Packer manifest (default: manifest.json in the state directory's images/)",
    },
)
def publish(
    c,
    regions="",
    share="",
    kms_key=None,
    retain=3,
    deprecate_days=0,
    include_shared=False,
    dry_run=False,
    skip_evidence=False,
    manifest=None,
):
    """Copy the newest AMI to each region (encrypted), tag it and its snapshots, share, retire old ones."""
    wanted = ami.regions(regions)
    options = ami.Options(
        regions=wanted,
        accounts=ami.accounts(share),
        kms_keys=ami.kms_keys(key_values(kms_key or [], "--kms-key", "REGION=KEY, e.g. us-east-1=alias/ami"), wanted),
        keep=retain,
        deprecate_at=datetime.now(UTC) + timedelta(days=deprecate_days) if deprecate_days else None,
        include_shared=include_shared,
    )
    source = _source(manifest)
    options.acceptance = ami.gate(source, skip_evidence)
    publisher = ami.Publisher()
    print(f"publishing {source.image_id} ({source.family}, input hash {source.input_hash[:12]}) from {source.region}")
    print(ami.table(ami.plan(publisher, source, options)))
    if dry_run:
        print("--dry-run: nothing changed")
        return
    result = ami.apply(publisher, source, options)
    out = paths.publish_record()
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"published to {', '.join(result['regions'])}; deploy manifest: {out}")


@task(name="list", help={"regions": REGIONS_HELP, "manifest": "Packer manifest naming the family"})
def list_(c, regions="", manifest=None):
    """The family's AMIs per region, newest first, with their tags."""
    rows = ami.listing(ami.Publisher(), ami.regions(regions), _source(manifest).family)
    for row in rows:
        tags = " ".join(f"{k}={v}" for k, v in sorted(row["tags"].items()))
        print(f"{row['region']:<14} {row['image']:<22} {row['created']:<25} {row['state']:<10} {tags}")


@task(
    help={
        "regions": REGIONS_HELP,
        "retain": RETAIN_HELP,
        "include_shared": SHARED_HELP,
        "dry_run": "print what would be retired, change nothing",
        "manifest": "Packer manifest naming the family",
    }
)
def prune(c, regions="", retain=3, include_shared=False, dry_run=False, manifest=None):
    """Retire old AMIs of the family (and their snapshots), never one in use."""
    options = ami.Options(regions=ami.regions(regions), keep=retain, include_shared=include_shared)
    source = _source(manifest)
    publisher = ami.Publisher()
    for region in options.regions:
        steps = (
            ami.retirement(publisher, region, source.family, options)
            if dry_run
            else ami.prune(publisher, region, source.family, options)
        )
        print(ami.table(steps))
