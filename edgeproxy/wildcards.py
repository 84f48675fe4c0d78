"""CloudFront's wildcard patterns, for path patterns (``behaviors``, reference 7.1) and
legacy cookie allow-lists (``cachekey``, reference 7.5): ``*`` matches any run of
characters (``/`` included), ``?`` exactly one, everything else itself, case-sensitively,
over the whole text.

Matching takes time linear in the text (times the pattern's length at worst), and never
turns a pattern into a backtracking regex. A pattern is cut at its ``*``s into fixed-length
pieces; the first piece must start the text, the last must end it, and each piece between
goes at its leftmost place after the one before. That greedy choice is the classic
two-pointer wildcard algorithm's (a ``*`` takes as little as it can, and a failed piece
moves on from there, never back), done a piece at a time with ``str.find`` and
``str.startswith`` instead of a character at a time in Python: that is what keeps an 8 KB
path well under a millisecond (the character loop alone takes about 2 ms).

One case is slower: a ``?`` inside a piece between two ``*``s is found run by run, so a
text built to put that piece's runs everywhere but in line costs a short Python step per
character (a few milliseconds for 8 KB; still linear).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Piece:
    """What lies between two ``*``s: literal runs at fixed offsets, a ``?`` in each gap."""

    size: int  # characters it covers, each '?' one
    runs: tuple[tuple[int, str], ...]  # (offset, literal text), in order, no '?'

    @classmethod
    def of(cls, text: str) -> Piece:
        runs: list[tuple[int, str]] = []
        offset = 0
        for literal in text.split("?"):
            if literal:
                runs.append((offset, literal))
            offset += len(literal) + 1
        return cls(len(text), tuple(runs))

    def at(self, text: str, start: int) -> bool:
        """Whether the piece matches ``text`` at ``start`` (the caller checked the room).
        A loop, not ``all()`` over a generator: every request's behavior is selected with
        this (a miss's path is new, so not in the selection's memo)."""
        for offset, literal in self.runs:
            if not text.startswith(literal, start + offset):
                return False
        return True

    def find(self, text: str, start: int, end: int) -> int:
        """The leftmost ``i >= start`` where the piece matches and ends by ``end``; -1 if
        none. Each run is looked for with ``str.find`` from the current candidate on and
        moves the candidate to where that run next fits, so the candidate only grows."""
        last = end - self.size
        candidate = start
        while candidate <= last:
            for offset, literal in self.runs:
                found = text.find(literal, candidate + offset, last + offset + len(literal))
                if found < 0:
                    return -1
                if found != candidate + offset:
                    candidate = found - offset  # the earliest this run allows
                    break
            else:
                return candidate
        return -1


@dataclass(frozen=True, slots=True)
class Glob:
    """A compiled pattern: ``first*middle…*last`` (``last`` None without a ``*``)."""

    first: Piece
    middle: tuple[Piece, ...]
    last: Piece | None

    @classmethod
    def of(cls, pattern: str) -> Glob:
        pieces = [Piece.of(text) for text in pattern.split("*")]
        if len(pieces) == 1:
            return cls(pieces[0], (), None)
        return cls(pieces[0], tuple(p for p in pieces[1:-1] if p.size), pieces[-1])

    def matches(self, text: str) -> bool:
        """Whether all of ``text`` matches: ``first`` starts it, ``last`` ends it, and each
        middle piece fits at its leftmost place after the one before."""
        first, last = self.first, self.last
        if last is None:
            return len(text) == first.size and first.at(text, 0)
        end = len(text) - last.size
        if end < first.size or not first.at(text, 0) or not last.at(text, end):
            return False
        position = first.size
        for piece in self.middle:
            found = piece.find(text, position, end)
            if found < 0:
                return False
            position = found + piece.size
        return True
