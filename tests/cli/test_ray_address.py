"""``--ray`` takes an optional address; a folder right after it is an input, not an address."""

from __future__ import annotations

from effnet_app.cli import build_parser, classify


def _args(*argv):
    return build_parser().parse_args(["classify", *argv])


def test_a_folder_after_ray_is_classified_on_a_local_ray(tmp_path):
    args = _args("--ray", str(tmp_path), "--format", "jsonl")
    assert args.ray == str(tmp_path)  # what argparse makes of it
    classify._ray_address_or_path(args)
    assert (args.ray, args.paths) == ("local", [str(tmp_path)])


def test_addresses_stay_addresses(tmp_path):
    for given, expected in (("auto", "auto"), ("ray://10.0.0.1:10001", "ray://10.0.0.1:10001")):
        args = _args(str(tmp_path), "--ray", given)
        classify._ray_address_or_path(args)
        assert (args.ray, args.paths) == (expected, [str(tmp_path)])
    args = _args(str(tmp_path), "--ray")
    classify._ray_address_or_path(args)
    assert (args.ray, args.paths) == ("local", [str(tmp_path)])
    args = _args(str(tmp_path))
    classify._ray_address_or_path(args)
    assert args.ray is None
