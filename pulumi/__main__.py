"""Pulumi entry point: read the stack config and inventory, then build the DC and its WAN side."""

import config
from components import build

build(config.load())
