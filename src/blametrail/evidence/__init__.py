"""Evidence: what the draft path knows about an incident (stored data plus connector fetches) as an EvidencePack."""
