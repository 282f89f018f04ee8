"""Cause statements in human updates: "Root cause: …", "caused by …", "turned out …", "because …", quoted as written.

A sentence states the cause when it uses one of the phrasings below and none of the rejections applies. Rules, in
order (docs/analysis.md lists them with examples):
1. Phrasings. Explicit: "root cause", "RCA:", "Cause:", "the cause was/is", "was the cause", "caused by", "… caused
   the …", "triggered by", "turned out", "the issue/problem/culprit/trigger/bug was", "traced (back) to", "came down
   to", "resulted from", "stemmed from", "the result of". Implicit: "because", "due to", "as a result of".
2. Not a statement: the cause is said to be unknown or still under investigation, or the sentence is a question.
3. Not a statement: speculation ("might be", "could be", "may have", "possibly", "perhaps", "maybe", "suspect",
   "not sure", "whether"). Softer wording ("probably", "likely", "we think", "seems") is kept but marked hedged.
4. Not a statement: the phrasing is negated ("was not caused by", "isn't the root cause", "ruled out") or the
   cause is said to be something it was not ("the cause was not the deploy").
5. "the issue was …" followed by a state ("resolved", "fixed", "intermittent", …) describes the incident, not its
   cause; "turned out fine / unrelated / a false alarm" is not a cause either.
6. "because", "due to", "as a result of" and "… caused the …": a clause that justifies what responders did
   ("Rolling back because errors rose", "We paged the DB team because …"), or that explains a recovery ("Errors
   recovered because we rolled back"), or a schedule ("due to start at 3pm") is not a cause statement.
A heading on its own line ("Root cause:" then the text on the next line) is joined with the sentence after it.
Among statements, an explicit one beats an implicit one, a plain one beats a hedged one, then the latest wins
(understanding grows during an incident).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from blametrail.analysis.evidence import UpdateEvidence
from blametrail.analysis.text import sentences

_STATE = (r"(?:resolved|fixed|mitigated|closed|escalated|acknowledged|reported|detected|noticed|seen|visible|limited"
          r"|confined|intermittent|still|not|gone|back|ongoing|over|first|only|isolated|reproduced|caught|triaged"
          r"|assigned|handed|worse|better|the same|happening|affecting|impacting|reaching|spreading|no longer)\b")
# (key, explicit, pattern); the first pattern that matches names the phrasing
PHRASES: tuple[tuple[str, bool, re.Pattern[str]], ...] = (
    ("root cause", True, re.compile(r"\broot[- ]?caus(?:e|es|ed)\b|\brca\s*[:\-–—]", re.I)),
    ("cause", True, re.compile(
        r"(?:^|[\s(\[*_])cause\s*[:\-–—]|\bthe (?:\w+ )?cause (?:was|is|has been|seems to (?:be|have been)"
        r"|appears to (?:be|have been))\b|\b(?:was|is) the (?:\w+ )?cause\b", re.I)),
    ("caused by", True, re.compile(r"\bcaused by\b|\b(?:was|were|is|are|been) caused\b|\btriggered by\b", re.I)),
    ("caused", True, re.compile(r"\bcaused (?:the|a|an|all|our|these|this|those|every|most|some|\d+)\b", re.I)),
    ("turned out", True, re.compile(
        r"\bturn(?:ed|s) out\b(?! (?:to be )?(?:fine|ok|okay|well|unrelated|harmless|a false|false|a red herring"
        r"|not|to not|nothing)\b)", re.I)),
    ("the issue was", True, re.compile(
        rf"\bthe (?:\w+ )?(?:issue|problem|culprit|trigger|bug|failure)(?: here)? (?:was|is)\b(?! {_STATE})"
        r"|(?:^|[\s(\[*_])(?:culprit|trigger)\s*[:\-–—]", re.I)),
    ("traced to", True, re.compile(
        r"\btraced (?:\w+ )?(?:back )?to\b|\bc(?:ame|omes) down to\b|\bboils? down to\b|\bresult(?:ed|s)? from\b"
        r"|\bstemm(?:ed|ing|s) from\b|\b(?:was|is|were|are) the result of\b", re.I)),
    ("because", False, re.compile(r"\bbecause\b|\bdue to\b|\bas a result of\b", re.I)),
)
_UNKNOWN = re.compile(
    r"\bunknown\b|\bunclear\b|\bnot (?:yet )?(?:known|clear|identified|established|determined|confirmed)\b"
    r"|\b(?:still|are|am|is|we're|i'm) (?:investigating|looking)\b|\blooking into\b|\bto follow\b"
    r"|\bpending (?:investigation|confirmation|rca|analysis|review)\b"
    r"|\btbd\b|\bunder investigation\b|\bno (?:root )?cause (?:yet|identified|found)\b|\?\s*$",
    re.I,
)
_SPECULATION = re.compile(
    r"\b(?:might|may|could) (?:be|have|also|well|explain|relate)\b|\bpossibl[ey]\b|\bperhaps\b|\bmaybe\b"
    r"|\bsuspect(?:s|ed|ing)?\b|\bwonder(?:ing)?\b|\bguess\b|\bnot sure\b|\bunsure\b|\bhypothes\w*|\btheory\b"
    r"|\bwhether\b|\bchecking if\b",
    re.I,
)
_HEDGE = re.compile(r"\bprobabl[ey]\b|\blikely\b|\b(?:we|i) (?:think|believe)\b|\bseems?\b|\bappears?\b"
                    r"|\bapparently\b", re.I)
# why: "nothing" negates only as a subject ("nothing caused …"), not as an object ("traffic fell to nothing because …")
_NEGATION_BEFORE = re.compile(r"(?:\bnot|n't|\bnever|\bno longer|(?<!\bto )(?<!\balmost )\bnothing)\s+(?:\w+\s+){0,2}$",
                              re.I)
_NEGATION_AFTER = re.compile(r"^\s*[:\-–—]?\s*(?:(?:is|was|are|were|does|did|has|had)(?:n't| not)\b"
                             r"|not (?:the|a|an|our|related|from|in)\b|never\b)", re.I)
_RULED_OUT = re.compile(r"\brul(?:ed|ing|e) out\b|\bunrelated to the (?:cause|issue|incident)\b", re.I)
_ACTION = (r"(?:roll(?:ed|ing)?(?: it)? ?back|revert\w*|restart\w*|reboot\w*|clos(?:e|ed|ing)|pag(?:e|ed|ing)"
           r"|escalat\w*|paus\w*|hold(?:ing)?|held|wait\w*|declar\w*|open(?:ed|ing)|resolv\w*|mark\w*|monitor(?:ed|ing)"
           r"|investigat\w*|scal(?:e|ed|ing)|disabl\w*|enabl\w*|keep(?:ing)?|kept|leav(?:e|ing)|post(?:ed|ing)"
           r"|call(?:ed|ing)|decid\w*|chose|stop(?:ped|ping)?|skip\w*|delay\w*|block\w*|mov(?:e|ed|ing)|switch\w*"
           r"|fail(?:ed|ing)? over|drain\w*|flush\w*|purg\w*|deploy(?:ed|ing)?|ship(?:ped|ping)?|rerout\w*)")
_RESPONDER = re.compile(r"\b(?:we|i|we're|we've|we'll|i'm|i've|let's|the team|on-?call|sre)\b", re.I)
_ACTS = re.compile(rf"\b{_ACTION}\b", re.I)
_STARTS_WITH_ACT = re.compile(rf"^\W*(?:(?:we|i|we're|we've|i'm|i've|the team|on-?call|sre)\s+)?{_ACTION}\b", re.I)
_RECOVERY = re.compile(r"\brecover\w*|\brestor\w*|\bback to (?:normal|baseline)\b|\bimprov\w*|\bstabili[sz]\w*"
                       r"|\bwent away\b|\bclear(?:ed|s)\b|\bsubsid\w*|\b(?:is|was|are|were) (?:resolved|fixed)\b"
                       r"|\b(?:works|working|healthy) again\b", re.I)
_SCHEDULE = re.compile(r"\bdue (?:to (?:be|start|begin|finish|land|ship|go|run|end|close|resume|complete)\b"
                       r"|in \d|at \d|by \d|(?:today|tomorrow|tonight|this|next)\b)", re.I)
_ACTION_CHECKED = frozenset({"because", "caused"})  # phrasings a responder's action or a recovery can also use
_HEADING = re.compile(r"^\W*(?:root[- ]?cause|rca|cause|culprit|trigger)\s*[:\-–—]\s*$", re.I)


@dataclass(frozen=True)
class CauseStatement:
    """A sentence of an update that states the incident's cause, with the phrasing that made it one."""

    update_id: str
    at: datetime
    sentence: str
    phrase: str  # a key of PHRASES, e.g. "root cause", "caused by", "because"
    explicit: bool  # an explicit phrasing ("root cause", "caused by") rather than "because"/"due to"
    hedged: bool  # stated with "probably", "likely", "we think"…


def phrasing(sentence: str) -> tuple[str, bool, bool] | None:
    """Return (phrase, explicit, hedged) when a sentence states a cause, else None (see the module's rules)."""
    if _UNKNOWN.search(sentence) or _SPECULATION.search(sentence) or _RULED_OUT.search(sentence):
        return None
    for key, explicit, pattern in PHRASES:
        for match in pattern.finditer(sentence):
            before, after = sentence[:match.start()], sentence[match.end():]
            if _NEGATION_BEFORE.search(before) or _NEGATION_AFTER.search(after):
                continue
            if key in _ACTION_CHECKED and not _states_a_cause(before, sentence[match.start():]):
                continue
            return key, explicit, bool(_HEDGE.search(sentence))
    return None


def _states_a_cause(before: str, rest: str) -> bool:
    """Tell whether an implicit "because"/"due to" explains the incident rather than an action or a recovery."""
    if _SCHEDULE.match(rest):
        return False
    if _STARTS_WITH_ACT.search(before) or (_RESPONDER.search(before) and _ACTS.search(before)):
        return False
    return not _RECOVERY.search(before)


_LABEL = re.compile(r"^\W*(?:root[- ]?cause|rca|cause|culprit|trigger)\s*[:\-–—]\s*", re.I)


def without_label(sentence: str) -> str:
    """Return a statement without its leading "Root cause:" style label (for quoting it inside prose)."""
    stripped = _LABEL.sub("", sentence, count=1).strip()
    return stripped or sentence


def statements(updates: Iterable[UpdateEvidence]) -> list[CauseStatement]:
    """Return every cause statement in the updates, in the order given."""
    found = []
    for update in updates:
        said = sentences(update.body)
        for index, sentence in enumerate(said):
            text = sentence
            if _HEADING.match(sentence):
                if index + 1 >= len(said):
                    continue
                text = f"{sentence} {said[index + 1]}"  # "Root cause:" on its own line, the text below it
            elif index and _HEADING.match(said[index - 1]):
                continue  # already joined to its heading
            match = phrasing(text)
            if match is not None:
                found.append(CauseStatement(update.id, update.at, text, *match))
    return found


def stated_cause(updates: Iterable[UpdateEvidence]) -> CauseStatement | None:
    """Return the update sentence that best states the cause: explicit, then plain, then the latest."""
    found = statements(updates)
    best = None
    for order, statement in enumerate(found):
        key = (statement.explicit, not statement.hedged, order)
        if best is None or key > best[0]:
            best = (key, statement)
    return best[1] if best else None
