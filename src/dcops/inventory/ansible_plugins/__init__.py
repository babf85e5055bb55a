"""Ansible plugins shipped with dcops (ansible.cfg `inventory_plugins` points here)."""
