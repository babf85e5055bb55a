"""CrossGuard entry point: `pulumi preview --policy-pack pulumi/policy` (starts the gRPC server)."""

from pack import build_pack

build_pack()
