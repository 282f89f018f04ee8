"""Integrations with where teams already work: Slack, PagerDuty, Opsgenie in; Jira, Linear, GitHub Issues, Confluence,
Notion out. One configuration per organization and kind; inbound calls verified the way each vendor signs them."""
