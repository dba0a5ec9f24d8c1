"""What each machine judge's number means, said once for the evaluator's table and the report."""
from __future__ import annotations

from .deep_face import SAME_PERSON_DISTANCE

JUDGE_MEANINGS = {
    "deep": "Deep face judge (dlib's face recogniser): a face recogniser would name them. The closest machine "
            f"stand-in for a person, and still not one (same person: descriptor distance under "
            f"{SAME_PERSON_DISTANCE}).",
    "pixel": "Pixel judge (correlation): a signal is present, even one under noise that no person can see.",
    "eigen": "Eigenface judge: likewise a signal is present, in a face space; it too overstates what people see.",
}
"""Leading with the deep judge: it is the one whose answer is closest to a person's."""
