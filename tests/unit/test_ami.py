"""Publishing AMIs against moto (AWS's stand-in): the calls are real boto3, the account is not."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import boto3
import invoke
import pytest
from botocore.awsrequest import AWSResponse
from moto import mock_aws
from moto.backends import get_backend

from halab import build, paths
from halab.images import ami
from halab.prove import evidence
from halab.tasks import ami as ami_tasks

SOURCE_REGION, OTHER_REGION = "eu-west-1", "us-east-1"
ACCOUNT = "123456789012"  # moto's own
HASH = "ab" * 32
VERSIONS = {"keepalived": "2.2.7", "nginx": "1.22.1"}


@pytest.fixture
def aws(monkeypatch, tmp_path):
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": SOURCE_REGION,
        "HALAB_HOME": str(tmp_path),
    }.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        yield


def make_image(region: str, name: str, tags: dict[str, str] | None = None, created: datetime | None = None) -> str:
    """An AMI as Packer leaves one: made from an instance, which is then terminated."""
    ec2 = boto3.client("ec2", region_name=region)
    base = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    instance = ec2.run_instances(ImageId=base, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    image_id = ec2.create_image(InstanceId=instance, Name=name)["ImageId"]
    ec2.terminate_instances(InstanceIds=[instance])
    if tags:
        ec2.create_tags(Resources=[image_id], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
    if created:
        moto_image(region, image_id).creation_date = created
    return image_id


def moto_image(region: str, image_id: str):
    """moto's own record of an image, for what its API cannot set (creation time, shared snapshots)."""
    return get_backend("ec2")[ACCOUNT][region].amis[image_id]


@pytest.fixture
def source(aws, tmp_path) -> ami.Source:
    image_id = make_image(
        SOURCE_REGION, f"halab-rocky-9-{HASH[:12]}-20261124000000", created=datetime(2026, 11, 24, tzinfo=UTC)
    )
    manifest = tmp_path / "manifest.json"
    manifest.write_text(
        json.dumps(
            {
                "builds": [
                    {
                        "builder_type": "amazon-ebs",
                        "build_time": 1795564800,
                        "artifact_id": f"{SOURCE_REGION}:{image_id}",
                        "custom_data": {
                            "os": "rocky-9",
                            "keepalived_version": "2.2.7",
                            "nginx_version": "1.22.1",
                            "input_hash": HASH,
                            "git_revision": "abc123",
                            "build_inputs": build.inputs_digest(VERSIONS),
                        },
                    }
                ]
            }
        )
    )
    return ami.source_from_manifest(manifest)


def options(**extra) -> ami.Options:
    return ami.Options(regions=[SOURCE_REGION, OTHER_REGION], accounts=["111122223333"], **extra)


def family_images(region: str) -> list[dict]:
    return ami.Publisher(progress=lambda _: None).family(region, "halab-rocky-9")


def test_first_publish_copies_tags_and_shares_in_both_regions(source):
    result = ami.apply(ami.Publisher(progress=lambda _: None), source, options())
    assert set(result["regions"]) == {SOURCE_REGION, OTHER_REGION}
    copy = result["regions"][OTHER_REGION]
    assert copy["ami"] != source.image_id and copy["tags"]["InputHash"] == HASH
    ec2 = boto3.client("ec2", region_name=OTHER_REGION)
    image = ec2.describe_images(ImageIds=[copy["ami"]])["Images"][0]
    assert {t["Key"]: t["Value"] for t in image["Tags"]}["KeepalivedVersion"] == "2.2.7"
    snapshot = ec2.describe_snapshots(SnapshotIds=copy["snapshots"])["Snapshots"][0]
    assert {t["Key"]: t["Value"] for t in snapshot["Tags"]}["Family"] == "halab-rocky-9"
    launch = ec2.describe_image_attribute(ImageId=copy["ami"], Attribute="launchPermission")["LaunchPermissions"]
    assert launch == [{"UserId": "111122223333"}]


def test_a_rerun_finds_the_earlier_copy_and_copies_nothing(source):
    publisher = ami.Publisher(progress=lambda _: None)
    first = ami.apply(publisher, source, options())
    steps = ami.plan(publisher, source, options())
    assert [s.action for s in steps if s.action in ("copy", "reuse")] == ["reuse", "reuse"]
    second = ami.apply(publisher, source, options())
    assert second["regions"] == first["regions"]
    assert len(family_images(OTHER_REGION)) == 1


def test_the_dry_run_plan_is_readable_and_changes_nothing(source):
    steps = ami.plan(
        ami.Publisher(progress=lambda _: None), source, options(deprecate_at=datetime(2027, 6, 1, tzinfo=UTC))
    )
    text = ami.table(steps)
    assert "copy" in text and "encrypted with the account's default EBS key" in text
    assert "share" in text and "111122223333" in text and "deprecate" in text and "2027-06-01" in text
    assert family_images(OTHER_REGION) == []


def test_retention_keeps_the_newest_and_anything_shared_or_in_use(source):
    region = OTHER_REGION
    tags = {"Family": "halab-rocky-9"}
    old = [
        make_image(region, f"halab-rocky-9-old{i}", tags, created=datetime(2026, i + 1, 1, tzinfo=UTC))
        for i in range(5)
    ]
    # old[1] is launched by a template; old[2] is shared with another account; old[0] and old[4]
    # use one snapshot (an image registered from another's snapshot): old[0] goes, the snapshot stays.
    ec2 = boto3.client("ec2", region_name=region)
    ec2.create_launch_template(LaunchTemplateName="web", LaunchTemplateData={"ImageId": old[1]})
    ec2.modify_image_attribute(ImageId=old[2], LaunchPermission={"Add": [{"UserId": "444455556666"}]})
    shared_snapshot = moto_image(region, old[4]).ebs_snapshot
    moto_image(region, old[0]).ebs_snapshot = shared_snapshot
    only_old3 = ami.snapshots(ec2.describe_images(ImageIds=[old[3]])["Images"][0])

    ami.apply(ami.Publisher(progress=lambda _: None), source, ami.Options(regions=[region], keep=2))

    left = {i["ImageId"] for i in family_images(region)}
    assert old[4] in left and old[1] in left and old[2] in left  # newest kept; in use; shared
    assert old[0] not in left and old[3] not in left  # retired
    snapshots = {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    assert shared_snapshot.id in snapshots  # still used by old[4]
    assert not set(only_old3) & snapshots  # deleted with old[3]


class Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_):
        yield self.body


def error_response(request, status: int, code: str, message: str) -> AWSResponse:
    body = (
        f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors>"
        "<RequestID>halab-test</RequestID></Response>"
    ).encode()
    return AWSResponse(request.url, status, {}, Raw(body))


def test_throttling_is_retried_with_backoff(source):
    publisher = ami.Publisher(progress=lambda _: None)
    calls = []

    def throttle_once(request, **_):
        calls.append(request)
        return (
            error_response(request, 400, "RequestLimitExceeded", "Request limit exceeded.") if len(calls) == 1 else None
        )

    publisher.client(OTHER_REGION).meta.events.register_first("before-send.ec2.CopyImage", throttle_once)
    result = ami.apply(publisher, source, options())
    assert len(calls) == 2 and result["regions"][OTHER_REGION]["ami"].startswith("ami-")


def test_access_denied_names_the_action_and_region(source):
    publisher = ami.Publisher(progress=lambda _: None)
    publisher.client(OTHER_REGION).meta.events.register_first(
        "before-send.ec2.CopyImage",
        lambda request, **_: error_response(request, 403, "UnauthorizedOperation", "You are not authorized."),
    )
    with pytest.raises(ami.AmiError, match=r"access denied: ec2:CopyImage in us-east-1 \(UnauthorizedOperation"):
        ami.apply(publisher, source, options())


def test_missing_ami_unknown_region_and_no_credentials_are_clear(source, monkeypatch):
    publisher = ami.Publisher(progress=lambda _: None)
    with pytest.raises(ami.AmiError, match="AMI not found in eu-west-1"):
        ami.plan(publisher, ami.Source(SOURCE_REGION, "ami-0123456789abcdef0", source.tags), options())
    with pytest.raises(ami.AmiError, match="unknown region 'xx-nowhere-1'"):
        ami.plan(publisher, source, ami.Options(regions=["xx-nowhere-1"]))
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(ami.AmiError, match="no AWS credentials found"):
        ami.plan(ami.Publisher(boto3.Session(), progress=lambda _: None), source, options())


def test_the_evidence_gate_wants_a_passing_acceptance_run_of_the_image_s_build_inputs(source):
    digest = build.inputs_digest(VERSIONS)
    with pytest.raises(ami.AmiError, match=f"no passing acceptance run is recorded for build inputs {digest[:12]}"):
        ami.gate(source, skip=False)
    said = []
    assert ami.gate(source, skip=True, progress=said.append) == "" and "--skip-evidence" in said[0]
    evidence.record("acceptance", "seed", True, {**VERSIONS, "nginx": "1.17.10"}, paths.home())
    with pytest.raises(ami.AmiError):
        ami.gate(source, skip=False)  # other pins: no proof of this image
    evidence.record("acceptance", "seed", False, VERSIONS, paths.home())
    with pytest.raises(ami.AmiError):
        ami.gate(source, skip=False)  # a failed run is no proof
    evidence.record("acceptance", "seed", True, VERSIONS, paths.home())
    assert ami.gate(source, skip=False).startswith("passed ")


def write_manifest(path, image_id: str, **custom: object):
    """A manifest naming image_id, its custom_data the test's own."""
    build = {"builder_type": "amazon-ebs", "artifact_id": f"{SOURCE_REGION}:{image_id}", "custom_data": custom}
    path.write_text(json.dumps({"builds": [build]}))
    return path


@pytest.mark.parametrize(
    ("custom", "message"),
    [
        ({"os": "rocky-9", "input_hash": 5}, r"custom_data.input_hash is '5', not 64 hex digits"),
        ({"os": "rocky-9", "input_hash": HASH, "keepalived_version": "$(id)"}, r"keepalived_version is '\"\$\(id\)\"'"),
        ({"os": "rocky-9\n", "input_hash": HASH}, r"custom_data.os is '\"rocky-9\\\\n\"', not an OS name"),
        ({"os": "*", "input_hash": HASH}, r"custom_data.os is '\"\*\"', not an OS name like rocky-9"),
        ({"os": "windows-11", "input_hash": HASH}, r"custom_data.os 'windows-11' is not one of rocky-9, rocky-8"),
        ({"os": "rocky-9"}, "records no custom_data.input_hash"),
    ],
)
def test_a_manifest_s_custom_data_has_the_templates_forms_or_is_refused_by_name(tmp_path, custom, message):
    path = write_manifest(tmp_path / "manifest.json", "ami-0123456789abcdef0", **custom)
    with pytest.raises((ami.AmiError, ami.manifest.ImageError), match=message):
        ami.source_from_manifest(path)


@pytest.mark.parametrize("image_id", ["ami-1;id", "ami-0123456789abcdef0\n", "ami-../x", "AMI-0123456789ABCDEF0"])
def test_a_manifest_s_artifact_is_a_region_and_an_image_id_or_is_refused(tmp_path, image_id):
    """The image id reaches AWS and every message: an id in another form is an edited manifest."""
    path = write_manifest(tmp_path / "manifest.json", image_id, os="rocky-9", input_hash=HASH)
    with pytest.raises(ami.AmiError, match="is not REGION:ami-ID"):
        ami.source_from_manifest(path)


def test_a_manifest_os_that_is_a_pattern_retires_no_family(aws, tmp_path):
    """An os of `*` made the family `halab-*`, which AWS's tag filter matches against every
    family: ami.prune retired the images of three."""
    families = ("halab-rocky-9", "halab-rocky-8", "halab-debian-12")
    images = [make_image(SOURCE_REGION, f"{family}-old", {"Family": family}) for family in families]
    path = write_manifest(tmp_path / "manifest.json", images[0], os="*", input_hash=HASH)
    try:
        ami_tasks.prune(invoke.Context(), regions=SOURCE_REGION, retain=0, manifest=str(path))
        refusal = ""
    except invoke.Exit as exc:
        refusal = str(exc.message)
    left = boto3.client("ec2", region_name=SOURCE_REGION).describe_images(Owners=["self"])["Images"]
    assert sorted(image["ImageId"] for image in left) == sorted(images)
    assert "custom_data.os is '\"*\"', not an OS name like rocky-9" in refusal


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("eu-west-1,us-east-1,eu-west-1", "--regions names eu-west-1 more than once"),
        ("eu-west-1,*", r"--regions: '\*' is not a region name"),
        ("../eu-west-1", "is not a region name"),
        (" , ", "--regions is required"),
    ],
)
def test_regions_are_region_names_each_once(text, message):
    with pytest.raises(ami.UsageError, match=message):
        ami.regions(text)


def test_shares_go_to_12_digit_accounts_each_once_never_public():
    assert ami.accounts("111122223333, 444455556666") == ["111122223333", "444455556666"]
    assert ami.accounts("") == []
    for text in ("all", "11112222333", "111122223333,111122223333", "arn:aws:organizations::1:organization/o-x"):
        with pytest.raises(ami.UsageError, match="--share"):
            ami.accounts(text)


KEY = "1234abcd-12ab-34cd-56ef-1234567890ab"


def test_a_kms_key_is_for_one_of_the_regions_in_a_form_copy_image_takes():
    wanted = [SOURCE_REGION, OTHER_REGION]
    good = {
        OTHER_REGION: f"arn:aws:kms:{OTHER_REGION}:111122223333:key/{KEY}",
        SOURCE_REGION: "alias/ami-key",
    }
    assert ami.kms_keys(good, wanted) == good
    assert ami.kms_keys({OTHER_REGION: "mrk-" + "0" * 32}, wanted)
    with pytest.raises(ami.UsageError, match=r"--kms-key 'us-west-2': not one of --regions \(eu-west-1, us-east-1\)"):
        ami.kms_keys({"us-west-2": "alias/ami-key"}, wanted)
    with pytest.raises(ami.UsageError, match="not a key id, alias/NAME, or the key's or alias's ARN in that region"):
        ami.kms_keys({OTHER_REGION: f"arn:aws:kms:{SOURCE_REGION}:111122223333:key/{KEY}"}, wanted)  # another region's
    with pytest.raises(ami.UsageError, match="not a key id"):
        ami.kms_keys({OTHER_REGION: "alias/x;id"}, wanted)
