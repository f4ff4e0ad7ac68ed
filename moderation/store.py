"""The question queue's store edge: every acknowledged change is one atomic script on the session's keys.

Each script checks what the decision was based on (the question's version, its votable state, the
rate limit), writes the change, counts it by state, appends the audit entry and emits the events
through signaling's shared append, so history, audit and state never disagree.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from moderation.errors import QuestionConflict, QuestionNotFound, TooManyQuestions
from moderation.keys import QaKeys
from moderation.questions import Question, from_fields, to_fields
from signaling.keys import SessionKeys
from signaling.messages import encode, event_body
from signaling.store import APPEND_LUA, SessionStore, hash_of, new_epoch

# Helpers every script shares: emit N events from ARGV starting at index i; audit; count states.
_COMMON = (
    APPEND_LUA
    + r"""
local function emit(i)
  local n = tonumber(ARGV[i])
  local last = 0
  for k = 1, n do
    local r = podium_append(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[i + 2 * k], ARGV[i + 2 * k - 1],
                            ARGV[2], ARGV[3])
    last = r[2]
  end
  return last
end
local function recount(counts, old, new)
  if not new or old == new then return end
  if old then redis.call('HINCRBY', counts, old, -1) end
  if new then redis.call('HINCRBY', counts, new, 1) end
end
local function hset_pairs(key, i)
  local n = tonumber(ARGV[i])
  local args = {}
  for k = 1, 2 * n do args[k] = ARGV[i + k] end
  if n > 0 then redis.call('HSET', key, unpack(args)) end
  return i + 2 * n + 1
end
local function field_of(i, name)
  local n = tonumber(ARGV[i])
  for k = 1, n do
    if ARGV[i + 2 * k - 1] == name then return ARGV[i + 2 * k] end
  end
  return nil
end
"""
)

# KEYS: meta hist chan question ids audit counts rate ask_key
# ARGV: session_json maxlen epoch limit window_ms qid created audit_json key_ttl_ms nfields f...
#       nevents a b ...
# An ask whose key was used already (a retry of an ask that did run) stores nothing and returns
# the first question's id.
_ASK = (
    _COMMON
    + r"""
local prior = redis.call('GET', KEYS[9])
if prior then return {-3, prior} end
local used = redis.call('INCR', KEYS[8])
if used == 1 then redis.call('PEXPIRE', KEYS[8], ARGV[5]) end
if used > tonumber(ARGV[4]) then
  redis.call('DECR', KEYS[8])
  return {-1, redis.call('PTTL', KEYS[8])}
end
if redis.call('EXISTS', KEYS[4]) == 1 then return {-2, 0} end
local after = hset_pairs(KEYS[4], 10)
redis.call('HSET', KEYS[4], 'ver', 1, 'votes', 0)
redis.call('ZADD', KEYS[5], ARGV[7], ARGV[6])
recount(KEYS[7], nil, field_of(10, 'state'))
redis.call('XADD', KEYS[6], '*', 'e', ARGV[8])
redis.call('SET', KEYS[9], ARGV[6], 'PX', ARGV[9])
return {1, emit(after)}
"""
)

# KEYS: meta hist chan question audit counts
# ARGV: session_json maxlen epoch expected_ver audit_json nfields f... nevents a b ...
_UPDATE = (
    _COMMON
    + r"""
local ver = redis.call('HGET', KEYS[4], 'ver')
if not ver then return {-1, 0} end
if tonumber(ver) ~= tonumber(ARGV[4]) then return {0, tonumber(ver)} end
local old = redis.call('HGET', KEYS[4], 'state')
local after = hset_pairs(KEYS[4], 6)
recount(KEYS[6], old, field_of(6, 'state'))
redis.call('HINCRBY', KEYS[4], 'ver', 1)
redis.call('XADD', KEYS[5], '*', 'e', ARGV[5])
return {1, emit(after)}
"""
)

# KEYS: meta hist chan source target source_votes target_votes audit counts dirty
# ARGV: session_json maxlen epoch source_ver target_ver audit_json nfields f... nevents a b ...
_MERGE = (
    _COMMON
    + r"""
local sv = redis.call('HGET', KEYS[4], 'ver')
local tv = redis.call('HGET', KEYS[5], 'ver')
if not sv or not tv then return {-1, 0} end
if tonumber(sv) ~= tonumber(ARGV[4]) or tonumber(tv) ~= tonumber(ARGV[5]) then return {0, 0} end
local old = redis.call('HGET', KEYS[4], 'state')
local after = hset_pairs(KEYS[4], 7)
recount(KEYS[9], old, field_of(7, 'state'))
redis.call('HINCRBY', KEYS[4], 'ver', 1)
redis.call('HINCRBY', KEYS[5], 'ver', 1)
redis.call('SUNIONSTORE', KEYS[7], KEYS[7], KEYS[6])
local votes = redis.call('SCARD', KEYS[7])
redis.call('HSET', KEYS[5], 'votes', votes)
redis.call('SADD', KEYS[10], redis.call('HGET', KEYS[5], 'id'))
redis.call('XADD', KEYS[8], '*', 'e', ARGV[6])
return {1, emit(after), votes}
"""
)

# KEYS: question voters dirty due; ARGV: voter add(1|0) node window_ms
_VOTE = r"""
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {-1, 0} end
if ARGV[2] == '1' then
  if state ~= 'approved' then return {-2, 0} end
  if redis.call('SADD', KEYS[2], ARGV[1]) == 0 then return {0, redis.call('SCARD', KEYS[2])} end
else
  if state ~= 'approved' and state ~= 'answered' then return {-2, 0} end
  if redis.call('SREM', KEYS[2], ARGV[1]) == 0 then return {0, redis.call('SCARD', KEYS[2])} end
end
local votes = redis.call('SCARD', KEYS[2])
redis.call('HSET', KEYS[1], 'votes', votes)
redis.call('SADD', KEYS[3], redis.call('HGET', KEYS[1], 'id'))
local claimed = redis.call('SET', KEYS[4], ARGV[3], 'NX', 'PX', ARGV[4])
return {1, votes, claimed and 1 or 0}
"""

# KEYS: meta hist chan settings audit [question]; ARGV: session_json maxlen epoch field value
#        audit_json need_public nevents a b ...
_SETTING = (
    _COMMON
    + r"""
if ARGV[7] == '1' then
  local state = redis.call('HGET', KEYS[6], 'state')
  if state ~= 'approved' and state ~= 'answered' then return {-2, 0} end
end
redis.call('HSET', KEYS[4], ARGV[4], ARGV[5])
redis.call('XADD', KEYS[5], '*', 'e', ARGV[6])
return {1, emit(8)}
"""
)

# KEYS: meta hist chan settings audit; ARGV: session_json maxlen epoch qid audit_json nevents a b ...
_UNPIN_IF = (
    _COMMON
    + r"""
if redis.call('HGET', KEYS[4], 'pinned') ~= ARGV[4] then return {0, 0} end
redis.call('HSET', KEYS[4], 'pinned', '')
redis.call('XADD', KEYS[5], '*', 'e', ARGV[5])
return {1, emit(6)}
"""
)


def snapshot_lua() -> str:
    """Lua, the body of a function of ``(tag, sub)``, that reads what one welcome needs of the queue.

    Every question (oldest first), the session's switches, and which questions ``sub`` voted for
    (the caller keeps the votable ones: it has every question's state), read atomically; ``tag``
    is the session's key hash tag, so every key read is in the session's slot. The join script
    runs it (signaling's ``JoinRead``): the welcome's Q&A part costs no store round trip of its
    own. :func:`parse_snapshot` reads its reply.
    """
    k = QaKeys(SessionKeys("", ""))
    tag = k.session.tag

    def suffix(key: str) -> str:
        return json.dumps(key[len(tag) :])

    votes = json.dumps(k.voters("x")[len(k.question("x")) :])
    return f"""
local rows, voted = {{}}, {{}}
for _, qid in ipairs(redis.call('ZRANGE', tag .. {suffix(k.ids)}, 0, -1)) do
  local key = tag .. {suffix(k.question(""))} .. qid
  local row = redis.call('HGETALL', key)
  if #row > 0 then
    rows[#rows + 1] = row
    if redis.call('SISMEMBER', key .. {votes}, sub) == 1 then
      voted[#voted + 1] = qid
    end
  end
end
return {{rows, redis.call('HGETALL', tag .. {suffix(k.settings)}), voted}}
"""


def parse_snapshot(raw: list[Any]) -> tuple[list[Question], QaSettings, frozenset[str]]:
    """The questions, switches and voted ids from the reply of :func:`snapshot_lua`."""
    rows, flat, voted = raw
    settings = hash_of(flat)
    return (
        [_question(hash_of(row)) for row in rows],
        QaSettings(locked=settings.get("locked") == "1", pinned=settings.get("pinned", "")),
        frozenset(_text(qid) for qid in voted),
    )


Event = tuple[str, str, dict[str, Any]]  # (audience, name, data)


@dataclass(frozen=True, slots=True)
class QaSettings:
    """A session's live Q&A switches."""

    locked: bool
    pinned: str


class QuestionStore:
    """Reads and atomic writes of one deployment's question queues."""

    def __init__(self, sessions: SessionStore) -> None:
        self.sessions = sessions
        client = sessions.client
        self._ask = client.register_script(_ASK)
        self._update = client.register_script(_UPDATE)
        self._merge = client.register_script(_MERGE)
        self._vote = client.register_script(_VOTE)
        self._setting = client.register_script(_SETTING)
        self._unpin_if = client.register_script(_UNPIN_IF)
        self._snapshot = client.register_script(
            "return (function(tag, sub)\n" + snapshot_lua() + "\nend)(ARGV[1], ARGV[2])\n"
        )

    def keys(self, session: str) -> QaKeys:
        """The Q&A keys of a session."""
        return QaKeys(self.sessions.keys(session))

    def _head(self, session: str) -> list[str | bytes | int]:
        return [encode(session), self.sessions.history_size, new_epoch()]

    def _base_keys(self, session: str) -> list[str]:
        k = self.sessions.keys(session)
        return [k.meta, k.history, k.channel]

    async def add(
        self, session: str, question: Question, audit: dict[str, Any], events: Sequence[Event],
        *, limit: int, window_ms: int, key: str, key_ttl_ms: int,
    ) -> str | None:  # fmt: skip
        """Stores a new question and emits its events, unless the asker's ``key`` was used.

        Args:
            key: the asker's key for this question (the question's own id when the client gave
                none, so a store client's retry of the same script is harmless too).
            key_ttl_ms: how long a key is remembered.

        Returns:
            None when stored; the id of the question the key already stands for otherwise (a
            retried ask: nothing was stored or emitted again).

        Raises:
            TooManyQuestions: the asker is over the per-person limit (nothing stored).
            QuestionConflict: the id is taken (the caller picks a new one).
        """
        q = self.keys(session)
        keys = [*self._base_keys(session), q.question(question.id), q.ids, q.audit, q.counts,
                q.rate(question.author), q.ask_key(question.author, key)]  # fmt: skip
        args = [*self._head(session), limit, window_ms, question.id, repr(question.created),
                _json(audit), key_ttl_ms, *_pairs(to_fields(question)),
                *_events(events)]  # fmt: skip
        status, value = await self.sessions.guard("append", self._ask(keys=keys, args=args))
        if status == -1:
            raise TooManyQuestions("you are asking too often", retry_after=max(0.1, value / 1000))
        if status == -2:
            raise QuestionConflict("question id taken")
        if status == -3:
            return value.decode() if isinstance(value, bytes) else str(value)
        return None

    async def update(
        self, session: str, before: Question, after: Question, audit: dict[str, Any],
        events: Sequence[Event],
    ) -> int | None:  # fmt: skip
        """Writes ``after`` if the question is still at ``before.version``; None if it changed."""
        q = self.keys(session)
        keys = [*self._base_keys(session), q.question(before.id), q.audit, q.counts]
        changed = _changed(before, after)
        args = [*self._head(session), before.version, _json(audit), *_pairs(changed),
                *_events(events)]  # fmt: skip
        status, value = await self.sessions.guard("append", self._update(keys=keys, args=args))
        if status == -1:
            raise QuestionNotFound("no such question in this session")
        return int(value) if status == 1 else None

    async def merge(
        self, session: str, source: Question, merged: Question, target: Question,
        audit: dict[str, Any], events: Sequence[Event],
    ) -> int | None:  # fmt: skip
        """Merges ``source`` into ``target`` (voters united); returns the target's votes, or None."""
        q = self.keys(session)
        keys = [*self._base_keys(session), q.question(source.id), q.question(target.id),
                q.voters(source.id), q.voters(target.id), q.audit, q.counts, q.dirty]  # fmt: skip
        args = [*self._head(session), source.version, target.version, _json(audit),
                *_pairs(_changed(source, merged)), *_events(events)]  # fmt: skip
        result = await self.sessions.guard("append", self._merge(keys=keys, args=args))
        if int(result[0]) == -1:
            raise QuestionNotFound("no such question in this session")
        return int(result[2]) if int(result[0]) == 1 else None

    async def vote(
        self, session: str, qid: str, voter: str, add: bool, *, node: str, window_ms: int
    ) -> tuple[bool, int, bool]:
        """Adds (or takes back) one person's vote, atomically and at most once.

        Returns:
            (whether the vote changed anything, votes now, whether this node broadcasts the counts).

        Raises:
            QuestionNotFound: no such question.
            QuestionConflict: the question is not open for votes.
        """
        q = self.keys(session)
        keys = [q.question(qid), q.voters(qid), q.dirty, q.votes_due]
        result = await self.sessions.guard(
            "append", self._vote(keys=keys, args=[voter, "1" if add else "0", node, window_ms])
        )
        status = int(result[0])
        if status == -1:
            raise QuestionNotFound("no such question in this session")
        if status == -2:
            raise QuestionConflict("only approved questions take votes")
        return status == 1, int(result[1]), status == 1 and int(result[2]) == 1

    async def set_setting(
        self, session: str, field: str, value: str, audit: dict[str, Any], events: Sequence[Event],
        *, public_question: str | None = None,
    ) -> int:  # fmt: skip
        """Sets ``locked`` or ``pinned``; a pinned question must be approved or answered."""
        q = self.keys(session)
        keys = [*self._base_keys(session), q.settings, q.audit]
        if public_question is not None:
            keys.append(q.question(public_question))
        args = [*self._head(session), field, value, _json(audit),
                "1" if public_question is not None else "0", *_events(events)]  # fmt: skip
        status, value_ = await self.sessions.guard("append", self._setting(keys=keys, args=args))
        if status == -2:
            raise QuestionConflict("only approved or answered questions go on screen")
        return int(value_)

    async def unpin_if(
        self, session: str, qid: str, audit: dict[str, Any], events: Sequence[Event]
    ) -> bool:
        """Takes ``qid`` off screen if it is the pinned question; True when it was."""
        q = self.keys(session)
        keys = [*self._base_keys(session), q.settings, q.audit]
        args = [*self._head(session), qid, _json(audit), *_events(events)]
        status, _ = await self.sessions.guard("append", self._unpin_if(keys=keys, args=args))
        return int(status) == 1

    async def get(self, session: str, qid: str) -> Question:
        """One question as stored.

        Raises:
            QuestionNotFound: no such question in this session.
        """
        raw = await self.sessions.guard(
            "read", self.sessions.client.hgetall(self.keys(session).question(qid))
        )
        if not raw:
            raise QuestionNotFound("no such question in this session")
        return _question(raw)

    async def all(self, session: str) -> list[Question]:
        """Every question of the session, oldest first."""
        client = self.sessions.client
        q = self.keys(session)
        ids = await self.sessions.guard("read", client.zrange(q.ids, 0, -1))
        pipe = client.pipeline(transaction=False)
        for qid in ids:
            pipe.hgetall(q.question(_text(qid)))
        rows = await self.sessions.guard("read", pipe.execute())
        return [_question(raw) for raw in rows if raw]

    async def snapshot(
        self, session: str, voter: str
    ) -> tuple[list[Question], QaSettings, frozenset[str]]:
        """Every question (oldest first), the switches, and the questions ``voter`` voted for.

        One atomic read: what :meth:`all` and :meth:`settings` return and the person's votes, at a
        store round trip per join instead of three or four.
        """
        q = self.keys(session)
        raw = await self.sessions.guard(
            "read", self._snapshot(keys=[q.ids], args=[q.session.tag, voter])
        )
        return parse_snapshot(raw)

    async def settings(self, session: str) -> QaSettings:
        """The session's lock and pinned question."""
        raw = await self.sessions.guard(
            "read", self.sessions.client.hgetall(self.keys(session).settings)
        )
        return QaSettings(locked=raw.get(b"locked") == b"1", pinned=_text(raw.get(b"pinned", b"")))

    async def voted(self, session: str, voter: str, qids: list[str]) -> list[str]:
        """Which of these questions the person has voted for."""
        if not qids:
            return []
        pipe = self.sessions.client.pipeline(transaction=False)
        for qid in qids:
            pipe.sismember(self.keys(session).voters(qid), voter)
        flags = await self.sessions.guard("read", pipe.execute())
        return [qid for qid, flag in zip(qids, flags, strict=True) if flag]

    async def voters(self, session: str, qid: str) -> list[str]:
        """Everyone who votes for a question now."""
        members = await self.sessions.guard(
            "read", self.sessions.client.smembers(self.keys(session).voters(qid))
        )
        return sorted(_text(m) for m in members)

    async def counts(self, session: str) -> dict[str, int]:
        """Questions per state."""
        raw = await self.sessions.guard(
            "read", self.sessions.client.hgetall(self.keys(session).counts)
        )
        return {_text(k): int(v) for k, v in raw.items() if int(v) > 0}

    async def audit(self, session: str) -> list[dict[str, Any]]:
        """The whole audit trail, in order."""
        rows = await self.sessions.guard(
            "read", self.sessions.client.xrange(self.keys(session).audit)
        )
        return [json.loads(fields[b"e"]) for _, fields in cast(list[Any], rows)]

    async def take_dirty(self, session: str) -> dict[str, int]:
        """Pops the questions whose votes changed, with their counts now."""
        client = self.sessions.client
        q = self.keys(session)
        popped = await self.sessions.guard("read", client.spop(q.dirty, 10_000))
        ids = [_text(qid) for qid in popped or []]
        if not ids:
            return {}
        pipe = client.pipeline(transaction=False)
        for qid in ids:
            pipe.scard(q.voters(qid))
        counts = await self.sessions.guard("read", pipe.execute())
        return {qid: int(n) for qid, n in zip(ids, counts, strict=True)}

    async def emit(self, session: str, events: Sequence[Event]) -> None:
        """Appends events with no state change (the coalesced vote counts)."""
        for audience, name, data in events:
            await self.sessions.append(session, name, data, audience=audience)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _question(raw: dict[Any, Any]) -> Question:
    fields = {_text(k): _text(v) for k, v in raw.items()}
    return from_fields(fields, votes=int(fields.get("votes", "0")), version=int(fields["ver"]))


def _changed(before: Question, after: Question) -> dict[str, str]:
    old, new = to_fields(before), to_fields(after)
    return {k: v for k, v in new.items() if old.get(k) != v}


def _pairs(fields: dict[str, str]) -> list[str]:
    flat: list[str] = [str(len(fields))]
    for key, value in fields.items():
        flat += [key, value]
    return flat


def _events(events: Sequence[Event]) -> list[str | bytes]:
    flat: list[str | bytes] = [str(len(events))]
    for audience, name, data in events:
        flat += [audience, event_body(name, data)]
    return flat


def _json(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))
