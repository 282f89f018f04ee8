"""The offline, deterministic engine: analysis.writer for drafts, the built-in summary writer for summaries."""

from __future__ import annotations

from blametrail.analysis.evidence import EvidencePack
from blametrail.analysis.writer import write_postmortem
from blametrail.engines.base import NO_CONTEXT, Draft, DraftContext, Summary
from blametrail.engines.summary import write_summary


class BuiltinEngine:
    """Write every section and the live summary from the evidence alone."""

    label = "builtin"

    def draft(self, pack: EvidencePack, context: DraftContext = NO_CONTEXT) -> Draft:
        """Write every section from the evidence; action items go to the owning team from the template."""
        context.step("asking_model")  # why: the card shows this step as "Writing the draft" for the built-in engine
        return Draft(write_postmortem(pack, service_owners=dict(context.service_owners),
                                      severity_definitions=context.severity_scale))

    def summarize(self, pack: EvidencePack) -> Summary:
        """Write the live summary from the evidence."""
        return Summary(write_summary(pack))
