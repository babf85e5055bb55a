"""Helpers shared by the components: names, tags and resource options."""

from __future__ import annotations

from collections.abc import Mapping

import pulumi

from dcops.iac.tags import describe, tag_list


def child(parent: pulumi.Resource, **kwargs: object) -> pulumi.ResourceOptions:
    """Options for a child resource: parent=self always, plus anything else given."""
    return pulumi.ResourceOptions(parent=parent, **kwargs)  # type: ignore[arg-type]


def tags(base: Mapping[str, object], **extra: object) -> list[str]:
    """Tag list for types that carry a `tags` list."""
    return tag_list({**base, **extra})


def desc(text: str, base: Mapping[str, object], **extra: object) -> str:
    """Description carrying the tags, for types with no tag field."""
    return describe(text, {**base, **extra})
