"""Publishing the AMI Packer built: copy, encrypt, tag, share, deprecate, retire (boto3).

Packer leaves an AMI in one region; deploy tooling wants it in several, encrypted, tagged
with what is in it, shared with the accounts that launch it, and old ones retired.
`plan()` reads the state (nothing changes), `apply()` carries the plan out. Every step
finds its earlier result before acting (copies by name, which Packer made unique, and
by tags), so a rerun after a failure completes the work instead of repeating it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, WaiterError

from halab import environment
from halab.errors import AmiError, UsageError, shown
from halab.images import manifest, packer
from halab.prove import evidence

# Throttling and transient errors: retried with exponential backoff by botocore itself.
RETRIES = Config(retries={"max_attempts": 8, "mode": "standard"})
WAIT = {"Delay": 15, "MaxAttempts": 120}  # available within 30 minutes, or an error
DENIED = {"UnauthorizedOperation", "AccessDenied", "AccessDeniedException", "AuthFailure"}
NOT_FOUND = {"InvalidAMIID.NotFound", "InvalidAMIID.Malformed", "InvalidAMIID.Unavailable"}
TAG_KEYS = ("Name", "Family", "OS", "KeepalivedVersion", "NginxVersion", "InputHash", "GitRevision")
# The options' forms. A region as AWS names one (eu-west-1, us-gov-west-1); an account to
# share with: 12 digits (launch permission goes to accounts by UserId; `all`, public, is not
# offered); a KMS key as CopyImage takes one: key id, alias, or either's ARN in that region.
REGION = re.compile(r"[a-z]{2,4}(?:-[a-z]+)+-[0-9]{1,2}")
ACCOUNT = re.compile(r"[0-9]{12}")
IMAGE_ID = re.compile(r"ami-[0-9a-f]{8,17}")
_KEY_ID = r"(?:mrk-[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
_ALIAS = r"alias/[A-Za-z0-9/_-]{1,250}"
KMS_KEY_RULE = "a key id, alias/NAME, or the key's or alias's ARN in that region"


@dataclass(frozen=True)
class Source:
    """The AMI Packer built, from its manifest: region, id, and what it contains."""

    region: str
    image_id: str
    tags: dict[str, str]
    build_inputs: str = ""  # the pins and provision scripts it was built from (build.inputs_digest)

    @property
    def family(self) -> str:
        return self.tags["Family"]

    @property
    def input_hash(self) -> str:
        return self.tags["InputHash"]


def _build_time(entry: dict) -> int:
    value = entry.get("build_time")
    return value if isinstance(value, int) else 0


def source_from_manifest(path: Path) -> Source:
    """The newest amazon-ebs build in Packer's manifest."""
    build = f"{environment.launcher()} image.build --target ami"
    if not path.exists():
        raise AmiError(f"no Packer manifest at {path}: build an AMI first ({build})")
    builds = [b for b in manifest.builds(path) if b.get("builder_type") == "amazon-ebs"]
    if not builds:
        raise AmiError(f"{path} lists no amazon-ebs build: build one with {build}")
    newest = max(builds, key=_build_time)
    artifact = str(newest.get("artifact_id", ""))
    region, _, image_id = artifact.split(",", maxsplit=1)[0].partition(":")
    if not REGION.fullmatch(region) or not IMAGE_ID.fullmatch(image_id):
        raise AmiError(f"{path}: artifact_id {shown(artifact)} is not REGION:ami-ID; was this manifest edited by hand?")
    data = newest["custom_data"]
    os_name = data.get("os", "")
    if os_name not in packer.oses():
        # The family ami.prune retires from: a pattern (`*`) or another OS's name would retire other images.
        raise AmiError(f"{path}: custom_data.os {shown(os_name)} is not one of {', '.join(packer.oses())}")
    if not data.get("input_hash"):
        raise AmiError(f"{path}: the amazon-ebs build records no custom_data.input_hash; was it built by image.build?")
    tags = {
        "Family": f"halab-{os_name}",
        "OS": os_name,
        "KeepalivedVersion": data.get("keepalived_version", ""),
        "NginxVersion": data.get("nginx_version", ""),
        "InputHash": data.get("input_hash", ""),
        "GitRevision": data.get("git_revision", ""),
    }
    tags["Name"] = f"{tags['Family']}-{tags['InputHash'][:12]}"
    return Source(region, image_id, tags, data.get("build_inputs", ""))


@dataclass
class Step:
    region: str
    action: str  # copy, reuse, tag, share, deprecate, retire, keep
    image: str
    detail: str = ""


@dataclass
class Options:
    regions: list[str]
    accounts: list[str] = field(default_factory=list)
    kms_keys: dict[str, str] = field(default_factory=dict)  # region -> KMS key id/arn
    keep: int = 3
    deprecate_at: datetime | None = None
    include_shared: bool = False
    acceptance: str = ""  # the tag value recording the passing run, if any


def regions(text: str) -> list[str]:
    """--regions: comma-separated region names, at least one, each once."""
    wanted = [region.strip() for region in text.split(",") if region.strip()]
    if not wanted:
        raise UsageError("--regions is required, e.g. --regions eu-west-1,us-east-1")
    for region in wanted:
        if not REGION.fullmatch(region):
            raise UsageError(f"--regions: {shown(region)} is not a region name, e.g. eu-west-1")
    _once("--regions", wanted)
    return wanted


def accounts(text: str) -> list[str]:
    """--share: comma-separated 12-digit AWS account ids, each once ("" shares with none)."""
    wanted = [account.strip() for account in text.split(",") if account.strip()]
    for account in wanted:
        if not ACCOUNT.fullmatch(account):
            raise UsageError(
                f"--share: {shown(account)} is not an AWS account id (12 digits); "
                "images are shared with accounts only, never made public"
            )
    _once("--share", wanted)
    return wanted


def kms_keys(pairs: dict[str, str], wanted: list[str]) -> dict[str, str]:
    """--kms-key REGION=KEY pairs: each region one of --regions, its key in a form CopyImage takes."""
    for region, key in pairs.items():
        if region not in wanted:
            raise UsageError(f"--kms-key {shown(region)}: not one of --regions ({', '.join(wanted)})")
        arn = rf"arn:aws[a-z-]*:kms:{re.escape(region)}:[0-9]{{12}}:(?:key/{_KEY_ID}|{_ALIAS})"
        if not re.fullmatch(rf"{_KEY_ID}|{_ALIAS}|{arn}", key):
            raise UsageError(f"--kms-key {region}={shown(key)}: not {KMS_KEY_RULE}")
    return pairs


def _once(option: str, values: list[str]) -> None:
    twice = sorted({value for value in values if values.count(value) > 1})
    if twice:
        raise UsageError(f"{option} names {', '.join(twice)} more than once; name each once")


class Publisher:
    """boto3 calls with clear errors; one client per region, each retrying throttling."""

    def __init__(self, session: boto3.Session | None = None, progress: Callable[[str], None] = print) -> None:
        self.session = session or boto3.Session()
        self.progress = progress
        self._clients: dict[str, Any] = {}

    def client(self, region: str) -> Any:
        if region not in self._clients:
            known = self.session.get_available_regions("ec2")
            if known and region not in known:
                raise AmiError(f"unknown region {region!r}; known: {', '.join(sorted(known))}")
            self._clients[region] = self.session.client("ec2", region_name=region, config=RETRIES)
        return self._clients[region]

    def call(self, region: str, action: str, **kwargs: Any) -> dict:
        """client.<action>(**kwargs), its failures turned into AmiError naming ec2:<Action> and region."""
        name = "".join(part.title() for part in action.split("_"))
        try:
            return getattr(self.client(region), action)(**kwargs)
        except NoCredentialsError:
            raise AmiError(
                "no AWS credentials found (environment, ~/.aws, or an instance role); "
                "see docs/amis.md (IAM permissions) for what publishing needs"
            ) from None
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            message = exc.response.get("Error", {}).get("Message", "")
            if code in DENIED:
                raise AmiError(f"access denied: ec2:{name} in {region} ({code}: {message})") from None
            if code in NOT_FOUND:
                image = kwargs.get("ImageIds") or kwargs.get("SourceImageId") or kwargs.get("ImageId")
                raise AmiError(f"AMI not found in {region}: {image} ({message})") from None
            raise AmiError(f"ec2:{name} in {region} failed: {code}: {message}") from None
        except BotoCoreError as exc:
            raise AmiError(f"ec2:{name} in {region} failed: {exc}") from None

    # --- reading state ----------------------------------------------------------------

    def image(self, region: str, image_id: str) -> dict:
        images = self.call(region, "describe_images", ImageIds=[image_id])["Images"]
        if not images:
            raise AmiError(f"AMI not found in {region}: {image_id}")
        return images[0]

    def family(self, region: str, family: str) -> list[dict]:
        """Our images of a family in a region, newest first."""
        images = self.call(
            region, "describe_images", Owners=["self"], Filters=[{"Name": "tag:Family", "Values": [family]}]
        )["Images"]
        return sorted(images, key=lambda i: i.get("CreationDate", ""), reverse=True)

    def named(self, region: str, name: str) -> dict | None:
        """An earlier copy: same (Packer-unique) name in our account, tagged or not yet."""
        images = self.call(region, "describe_images", Owners=["self"], Filters=[{"Name": "name", "Values": [name]}])[
            "Images"
        ]
        live = [i for i in images if i.get("State") in ("available", "pending")]
        return live[0] if live else None

    def shared(self, region: str, image_id: str) -> bool:
        permissions = self.call(region, "describe_image_attribute", ImageId=image_id, Attribute="launchPermission").get(
            "LaunchPermissions", []
        )
        return bool(permissions)

    def in_use(self, region: str, image_id: str) -> str:
        """Why an image must stay: an instance or a launch template uses it ("" when none)."""
        reservations = self.call(
            region,
            "describe_instances",
            Filters=[
                {"Name": "image-id", "Values": [image_id]},
                {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]},
            ],
        )["Reservations"]
        instances = [i["InstanceId"] for r in reservations for i in r["Instances"]]
        if instances:
            return f"used by instance {', '.join(instances)}"
        for template in self.call(region, "describe_launch_templates").get("LaunchTemplates", []):
            versions = self.call(
                region, "describe_launch_template_versions", LaunchTemplateId=template["LaunchTemplateId"]
            ).get("LaunchTemplateVersions", [])
            if any(v.get("LaunchTemplateData", {}).get("ImageId") == image_id for v in versions):
                return f"used by launch template {template['LaunchTemplateName']}"
        return ""


def snapshots(image: dict) -> list[str]:
    return [m["Ebs"]["SnapshotId"] for m in image.get("BlockDeviceMappings", []) if m.get("Ebs", {}).get("SnapshotId")]


def plan(publisher: Publisher, source: Source, options: Options) -> list[Step]:
    """What apply() will do, from the current state; changes nothing."""
    original = publisher.image(source.region, source.image_id)
    steps = []
    for region in options.regions:
        if region == source.region:
            image_id, steps_here = source.image_id, [Step(region, "reuse", source.image_id, "built here by Packer")]
        elif earlier := publisher.named(region, original["Name"]):
            image_id, steps_here = (
                earlier["ImageId"],
                [Step(region, "reuse", earlier["ImageId"], "copied by an earlier run")],
            )
        else:
            key = options.kms_keys.get(region, "the account's default EBS key")
            image_id, steps_here = (
                "(new copy)",
                [Step(region, "copy", "(new copy)", f"from {source.region}/{source.image_id}, encrypted with {key}")],
            )
        steps += steps_here
        steps.append(
            Step(
                region,
                "tag",
                image_id,
                f"image and snapshots: {', '.join(TAG_KEYS)}" + (", Acceptance" if options.acceptance else ""),
            )
        )
        if options.accounts:
            steps.append(
                Step(region, "share", image_id, f"launch + create-volume permission for {', '.join(options.accounts)}")
            )
        if options.deprecate_at:
            steps.append(Step(region, "deprecate", image_id, f"at {options.deprecate_at.isoformat()}"))
        steps += retirement(publisher, region, source.family, options, newest=image_id)
    return steps


def retirement(publisher: Publisher, region: str, family: str, options: Options, newest: str = "") -> list[Step]:
    """Keep the newest `keep` images of the family (counting `newest`, which may not exist yet);
    retire the rest unless shared (and not --include-shared) or in use."""
    images = [i for i in publisher.family(region, family) if i["ImageId"] != newest]
    slots = options.keep - (1 if newest else 0)
    steps = [Step(region, "keep", i["ImageId"], "among the newest") for i in images[: max(slots, 0)]]
    for image in images[max(slots, 0) :]:
        reason = publisher.in_use(region, image["ImageId"])
        if not reason and not options.include_shared and publisher.shared(region, image["ImageId"]):
            reason = "shared with other accounts (--include-shared retires it anyway)"
        steps.append(
            Step(
                region,
                "keep" if reason else "retire",
                image["ImageId"],
                reason or f"older than the newest {options.keep}; snapshots {', '.join(snapshots(image)) or 'none'}",
            )
        )
    return steps


def apply(publisher: Publisher, source: Source, options: Options) -> dict:
    """Carry out the plan region by region; the publish manifest (region -> AMI, snapshots, tags)."""
    original = publisher.image(source.region, source.image_id)
    tags = {**source.tags, **({"Acceptance": options.acceptance} if options.acceptance else {})}
    regions: dict[str, dict] = {}
    result = {"family": source.family, "input_hash": source.input_hash, "regions": regions}
    for region in options.regions:
        image_id = ensure_copy(publisher, source, original, region, options)
        image = publisher.image(region, image_id)
        snaps = snapshots(image)
        done = [f"{region}: {image_id}"]
        try:
            publisher.call(
                region,
                "create_tags",
                Resources=[image_id, *snaps],
                Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
            )
            done.append("tagged")
            if options.accounts:
                publisher.call(
                    region,
                    "modify_image_attribute",
                    ImageId=image_id,
                    LaunchPermission={"Add": [{"UserId": a} for a in options.accounts]},
                )
                for snapshot in snaps:
                    publisher.call(
                        region,
                        "modify_snapshot_attribute",
                        SnapshotId=snapshot,
                        Attribute="createVolumePermission",
                        OperationType="add",
                        UserIds=options.accounts,
                    )
                done.append("shared")
            if options.deprecate_at:
                publisher.call(region, "enable_image_deprecation", ImageId=image_id, DeprecateAt=options.deprecate_at)
                done.append("deprecation set")
        except AmiError as exc:
            raise AmiError(f"{exc}\nstate: {', '.join(done)}; rerun ami.publish to complete it") from None
        regions[region] = {"ami": image_id, "snapshots": snaps, "tags": tags}
        publisher.progress(f"{region}: {image_id} ready ({', '.join(done[1:]) or 'nothing to change'})")
        prune(publisher, region, source.family, options, newest=image_id)
    return result


def ensure_copy(publisher: Publisher, source: Source, original: dict, region: str, options: Options) -> str:
    """The image in region: the source itself, an earlier copy, or a new encrypted copy, available."""
    if region == source.region:
        return source.image_id
    earlier = publisher.named(region, original["Name"])
    if earlier:
        image_id = earlier["ImageId"]
    else:
        kwargs: dict[str, Any] = {
            "SourceRegion": source.region,
            "SourceImageId": source.image_id,
            "Name": original["Name"],
            "Encrypted": True,
            "ClientToken": f"halab-{source.input_hash[:40]}-{region}"[:64],
            "Description": original.get("Description", ""),
        }
        if region in options.kms_keys:
            kwargs["KmsKeyId"] = options.kms_keys[region]
        image_id = publisher.call(region, "copy_image", **kwargs)["ImageId"]
        publisher.progress(f"{region}: copying {source.image_id} -> {image_id} (encrypted)")
    try:
        publisher.client(region).get_waiter("image_available").wait(ImageIds=[image_id], WaiterConfig=WAIT)
    except WaiterError as exc:
        raise AmiError(f"{region}: {image_id} did not become available: {exc}; rerun ami.publish to continue") from None
    return image_id


def prune(publisher: Publisher, region: str, family: str, options: Options, newest: str = "") -> list[Step]:
    """Retire what retirement() says; snapshots go too unless another image still uses them."""
    steps = retirement(publisher, region, family, options, newest)
    for step in steps:
        if step.action != "retire":
            continue
        image = publisher.image(region, step.image)
        publisher.call(region, "deregister_image", ImageId=step.image)
        remaining = publisher.call(region, "describe_images", Owners=["self"])["Images"]
        still_used = {s for other in remaining for s in snapshots(other)}
        for snapshot in snapshots(image):
            if snapshot in still_used:
                publisher.progress(f"{region}: kept snapshot {snapshot}: another image still uses it")
            else:
                publisher.call(region, "delete_snapshot", SnapshotId=snapshot)
        publisher.progress(f"{region}: retired {step.image}")
    return steps


def table(steps: list[Step]) -> str:
    rows = [("region", "action", "image", "detail")] + [(s.region, s.action, s.image, s.detail) for s in steps]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}".rstrip() for r in rows)


def gate(source: Source, skip: bool, progress: Callable[[str], None] = print) -> str:
    """The evidence rule: a passing acceptance run recorded for daemons built from the image's
    build inputs (the same pins and provision scripts).

    Returns the Acceptance tag's value ("" when skipped); refuses otherwise.
    """
    runs = evidence.passing(source.build_inputs)
    if runs:
        return f"passed {runs[0]['when']} on lab {runs[0]['lab']}"
    if skip:
        progress(
            f"--skip-evidence: publishing {source.image_id} although no passing acceptance run is recorded for "
            f"build inputs {source.build_inputs[:12]}; its Acceptance tag stays unset"
        )
        return ""
    recorded = source.build_inputs[:12] or "(none in the manifest)"
    raise AmiError(
        f"no passing acceptance run is recorded for build inputs {recorded} "
        f"({source.image_id}): run `{environment.launcher()} test.acceptance` with the same pins and scripts, "
        "or pass --skip-evidence to publish without that proof"
    )


def listing(publisher: Publisher, regions: list[str], family: str) -> list[dict]:
    """The family's images per region, newest first, with their tags."""
    rows = []
    for region in regions:
        for image in publisher.family(region, family):
            tags = {t["Key"]: t["Value"] for t in image.get("Tags", [])}
            rows.append(
                {
                    "region": region,
                    "image": image["ImageId"],
                    "created": image.get("CreationDate", ""),
                    "state": image.get("State", ""),
                    "tags": tags,
                }
            )
    return rows
