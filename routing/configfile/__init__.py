"""Config as code: reps, their hours, pools, meeting types and their routing rules in one YAML or JSON file.

* ``parse_config(data)`` checks a loaded document and returns a ``Config`` (or raises ``ConfigInvalid``
  listing every problem as ``path.in.file: message``); it writes nothing.
* ``config_import(config=..., dry_run=False)`` applies a ``Config`` in one transaction and returns the
  list of changes (empty when the database already matches the file).
* ``config_export()`` returns the database's configuration as a plain document in the same format.

The format is documented in docs/config.md.
"""

from routing.configfile.exporter import config_export, dump_document
from routing.configfile.importer import config_import
from routing.configfile.loader import load_document
from routing.configfile.schema import Config, ConfigInvalid, parse_config, validate_questions

__all__ = [
    "Config",
    "ConfigInvalid",
    "config_export",
    "config_import",
    "dump_document",
    "load_document",
    "parse_config",
    "validate_questions",
]
