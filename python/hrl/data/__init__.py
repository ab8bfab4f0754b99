"""The data pipeline: collect tournament logs, parse them (Rust), build training samples.

    CollectConfig, collect_worlds     run SCML 2025 Standard worlds and keep their logs
    load_logs                         read one world folder or a folder of worlds (CSV or parquet)
                                      into tables (alias: load_negotiation_csv, its first name)
    build_macro_dataset               one row per (world, agent, day): state + goal label
    build_micro_dataset               one row per expert decision: history before it + action
    write_datasets                    both tables as parquet with a schema version

See docs/data.md.
"""

from hrl.data.collect import CollectConfig, collect_worlds, plan_worlds
from hrl.data.datasets import build_macro_dataset, build_micro_dataset, label_sparsity, write_datasets
from hrl.data.logs import LogTables, load_logs, load_negotiation_csv
from hrl.data.schema import SCHEMA_VERSION, MacroSample, MicroSample

__all__ = [
    "SCHEMA_VERSION",
    "CollectConfig",
    "LogTables",
    "MacroSample",
    "MicroSample",
    "build_macro_dataset",
    "build_micro_dataset",
    "collect_worlds",
    "label_sparsity",
    "load_logs",
    "load_negotiation_csv",
    "plan_worlds",
    "write_datasets",
]
