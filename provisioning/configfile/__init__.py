"""The tutorial's ``config.yml``: read into a request (``reader``) and written from a workspace (``writer``)."""

from provisioning.configfile.reader import ConfigError, ConfigIssue, parse_config
from provisioning.configfile.writer import export_config

__all__ = ["ConfigError", "ConfigIssue", "export_config", "parse_config"]
