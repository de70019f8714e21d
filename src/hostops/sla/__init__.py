"""The 99.9% availability SLA: a month's availability and credits, and the client's monthly
report."""
