"""The tutorial's ``config.yml``: read into a request (``reader``), written from a workspace (``writer``), and
compared with a workspace the portal holds as its desired state (``desired``)."""

from provisioning.configfile.desired import DesiredState, change_line, desired_state
from provisioning.configfile.reader import ConfigError, ConfigIssue, parse_config
from provisioning.configfile.writer import export_config

__all__ = [
    "ConfigError",
    "ConfigIssue",
    "DesiredState",
    "change_line",
    "desired_state",
    "export_config",
    "parse_config",
]
