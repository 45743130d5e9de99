"""One module per ``stemwatch`` subcommand, each with ``register(subparsers)``."""

from types import ModuleType

from stemwatch.commands import (
    alert_test,
    bench,
    config,
    dashboard,
    demo,
    evaluate,
    export,
    label,
    labels,
    platemap,
    status,
    synth,
    train,
    watch,
)

COMMANDS: tuple[ModuleType, ...] = (
    demo,
    synth,
    label,
    train,
    evaluate,
    export,
    watch,
    status,
    platemap,
    labels,
    alert_test,
    dashboard,
    bench,
    config,
)
