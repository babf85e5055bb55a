"""Fakes of services that cannot run here (the Wazuh manager API); test and lab tools only,
never shipped in the wheel."""
