"""Evidence collectors: hosts over SSH, the IaC plan, backups and drills, PKI, SOC, documents."""
