"""Every ``rwi`` sub-command takes ``--config`` before it or after it (``rwi --config F
serve`` and ``rwi serve --config F``, as the README writes it), at every level."""

from __future__ import annotations

import argparse

import pytest

from rwi.cli import build_parser

CONFIG = "/etc/rwi/rwi.toml"


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _leaves(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    children = _subparsers(parser)
    if not children:
        return [(path, parser)]
    return [leaf for name, child in children.items() for leaf in _leaves(child, (*path, name))]


def _required(parser: argparse.ArgumentParser) -> list[str]:
    """Arguments that make a valid command line for ``parser``: its positionals and its
    required options, each with a value of its type."""
    argv: list[str] = []
    for action in parser._actions:
        if action.option_strings and not action.required:
            continue
        if isinstance(action, argparse._SubParsersAction | argparse._HelpAction):
            continue
        if action.nargs in ("*", "?"):
            continue
        value = "1" if action.type in (int, float) else (action.choices or ["x"])[0]
        argv += [action.option_strings[0], str(value)] if action.option_strings else [str(value)]
    return argv


LEAVES = _leaves(build_parser())


def test_the_walk_sees_every_sub_command() -> None:
    paths = {path for path, _ in LEAVES}
    top = {path[0] for path in paths}
    assert top == set(_subparsers(build_parser()))
    assert {("serve",), ("migrate",), ("replay", "call"), ("call", "originate")} <= paths
    assert len(paths) >= 15


@pytest.mark.parametrize(("path", "leaf"), LEAVES, ids=[" ".join(p) for p, _ in LEAVES])
def test_config_goes_before_or_after_each_sub_command(
    path: tuple[str, ...], leaf: argparse.ArgumentParser
) -> None:
    rest = _required(leaf)
    lines = [
        ["--config", CONFIG, *path, *rest],  # rwi --config F <sub> ...
        [*path, "--config", CONFIG, *rest],  # rwi <sub> --config F ...
        [path[0], "--config", CONFIG, *path[1:], *rest],  # between nested levels
    ]
    for argv in lines:
        args = build_parser().parse_args(argv)
        assert args.config == CONFIG, argv
        assert args.command == path[0]
        assert callable(args.func), argv


def test_without_config_the_default_is_kept() -> None:
    args = build_parser().parse_args(["serve"])
    assert args.config is None
