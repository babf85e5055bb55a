"""Tags on OpenStack resources: where each resource type can carry them, and how to read them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

#: Tags every resource must carry (policy `required-tags`).
REQUIRED_TAGS = ("system", "zone", "level")

#: Types with a Neutron/Nova/Keystone `tags` list ("key=value" strings).
TAG_LIST_TYPES = frozenset({
    "openstack:identity/project:Project",
    "openstack:networking/network:Network",
    "openstack:networking/subnet:Subnet",
    "openstack:networking/router:Router",
    "openstack:networking/port:Port",
    "openstack:networking/secGroup:SecGroup",
    "openstack:compute/instance:Instance",
})
#: Types whose only free-form field is `metadata` (a map).
METADATA_TYPES = frozenset({"openstack:blockstorage/volume:Volume"})
#: Types whose only free-form field is `description`: tags go in a trailing "[k=v ...]".
DESCRIPTION_TYPES = frozenset({
    "openstack:networking/secGroupRule:SecGroupRule",
    "openstack:vpnaas/ikePolicy:IkePolicy",
    "openstack:vpnaas/ipSecPolicy:IpSecPolicy",
    "openstack:vpnaas/service:Service",
    "openstack:vpnaas/endpointGroup:EndpointGroup",
    "openstack:vpnaas/siteConnection:SiteConnection",
})
#: Types OpenStack gives no field to tag; they inherit the tags of what they reference.
UNTAGGABLE_TYPES = frozenset({
    "openstack:networking/routerInterface:RouterInterface",
    "openstack:networking/subnetRoute:SubnetRoute",
    "openstack:compute/serverGroup:ServerGroup",
    "openstack:compute/volumeAttach:VolumeAttach",
    "openstack:identity/roleAssignment:RoleAssignment",
})

_DESC_TAGS = re.compile(r"\[((?:[\w.-]+=[^\s\]]*\s*)+)\]\s*$")


def tag_list(tags: Mapping[str, object]) -> list[str]:
    """Tags as Neutron/Nova "key=value" strings, sorted."""
    return sorted(f"{k}={v}" for k, v in tags.items())


def describe(text: str, tags: Mapping[str, object]) -> str:
    """A description with the tags appended as "[k=v ...]" (Neutron descriptions hold 255)."""
    return f"{text} [{' '.join(f'{k}={v}' for k, v in sorted(tags.items()))}]"


def tags_of(resource_type: str, props: Mapping[str, Any]) -> dict[str, str]:
    """Read a resource's tags from whichever field its type carries them in."""
    out: dict[str, str] = {}
    raw = props.get("tags")
    if isinstance(raw, list):
        for item in raw:
            if isinstance(item, str) and "=" in item:
                key, _, value = item.partition("=")
                out[key] = value
    meta = props.get("metadata")
    if isinstance(meta, Mapping):
        out.update({str(k): str(v) for k, v in meta.items()})
    desc = props.get("description")
    if isinstance(desc, str) and (match := _DESC_TAGS.search(desc)):
        for pair in match.group(1).split():
            key, _, value = pair.partition("=")
            out[key] = value
    del resource_type
    return out


def short_type(resource_type: str) -> str:
    """"openstack:networking/secGroup:SecGroup" -> "networking.SecGroup"."""
    parts = resource_type.split(":")
    if len(parts) != 3:
        return resource_type
    return f"{parts[1].split('/')[0]}.{parts[2]}"
