"""`stemwatch config`: print a commented default configuration, or check a config file."""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

from pydantic import BaseModel

from stemwatch.core.config import example_yaml, load_config

# component name -> "module:ClassName" of its configuration model
COMPONENTS = {
    "monitor": "monitor.config:MonitorConfig",
    "trainer": "trainer.config:TrainerConfig",
}


def component_model(name: str) -> type[BaseModel]:
    module_name, cls_name = COMPONENTS[name].split(":")
    model = getattr(importlib.import_module(module_name), cls_name)
    assert isinstance(model, type) and issubclass(model, BaseModel)
    return model


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "config",
        help="Print a commented default config, or validate one",
        description="Print a commented default config (--example), or validate a file (--check).",
    )
    p.add_argument("component", choices=sorted(COMPONENTS), help="which component's config")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--example", action="store_true", help="print the commented defaults")
    group.add_argument("--check", type=Path, metavar="FILE", help="validate FILE and exit")
    p.add_argument(
        "--try-name",
        action="append",
        default=[],
        metavar="NAME",
        help="(monitor) show how the file name NAME is read with this config: what each "
        "preset and the user regex find, and where it lands; repeatable",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from stemwatch.core.errors import ConfigError

    model = component_model(args.component)
    if args.example:
        print(f"# stemwatch {args.component} configuration (all fields optional; defaults shown)")
        print(example_yaml(model()))
        return 0
    cfg = load_config(model, args.check)
    print(f"{args.check}: valid {args.component} configuration")
    if args.try_name:
        plate = getattr(cfg, "plate", None)
        if plate is None:
            raise ConfigError("--try-name: only the monitor configuration reads file names")
        from stemwatch.core.platemeta import explain, with_config

        for name in args.try_name:
            print("\n".join(explain(name, **with_config(plate))))
    return 0
