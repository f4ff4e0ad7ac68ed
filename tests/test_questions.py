"""The question queue's pure rules: every transition, every refusal, text hygiene, ordering."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from moderation import questions as rules
from moderation.errors import NotAllowed, QnaClosed, QuestionConflict, TextRefused
from moderation.questions import Actor, QState, Question
from moderation.text import WordFilter, clean
from signaling.identity import Role
from signaling.programme import QnaSettings

AMINA = Actor("amina", "Amina", Role.PARTICIPANT, "civil-society")
LI = Actor("li", "Li", Role.PARTICIPANT, "academia")
MOD = Actor("mod", "Maria", Role.MODERATOR)
OPS = Actor("ops", "Olu", Role.OPERATOR)
DISPLAY = Actor("screen", "Screen", Role.DISPLAY)
PREMOD = QnaSettings()
OPEN = QnaSettings(premoderation=False)
NOWORDS = WordFilter()


def _ask(actor: Actor = AMINA, text: str = "How will this be funded?", **kw: object) -> Question:
    params: dict[str, object] = {
        "settings": PREMOD,
        "locked": False,
        "words": NOWORDS,
        "now": 100.0,
    }
    params.update(kw)
    return rules.ask("q1abcd", actor, text, "en", False, **params)  # type: ignore[arg-type]


def _approved(**changes: object) -> Question:
    return replace(rules.approve(_ask(), MOD, 110.0), **changes)  # type: ignore[arg-type]


def test_a_question_waits_for_a_moderator_when_premoderation_is_on() -> None:
    q = _ask()
    assert (q.state, q.author, q.text, q.created) == (
        QState.PENDING,
        "amina",
        "How will this be funded?",
        100.0,
    )


def test_a_question_goes_straight_to_the_public_when_premoderation_is_off() -> None:
    assert _ask(settings=OPEN).state is QState.APPROVED


def test_a_filtered_word_holds_a_question_for_moderation_even_without_premoderation() -> None:
    q = _ask(text="انت غبي", settings=OPEN, words=WordFilter.of(["غبي"]))
    assert q.state is QState.PENDING
    assert q.held == ("غبي",)


@pytest.mark.parametrize(
    ("kw", "error"),
    [
        ({"locked": True}, QnaClosed),
        ({"settings": QnaSettings(enabled=False)}, QnaClosed),
        ({"text": "   "}, TextRefused),
    ],
)
def test_asking_is_refused_when_closed_locked_or_empty(
    kw: dict[str, object], error: type[Exception]
) -> None:
    with pytest.raises(error):
        _ask(**kw)  # type: ignore[arg-type]


def test_a_display_cannot_ask() -> None:
    with pytest.raises(NotAllowed):
        _ask(actor=DISPLAY)


def test_anonymous_questions_are_refused_where_the_session_does_not_take_them() -> None:
    with pytest.raises(TextRefused):
        rules.ask("q1abcd", AMINA, "Why?", "en", True, settings=QnaSettings(anonymous_allowed=False),
                  locked=False, words=NOWORDS, now=1.0)  # fmt: skip


def test_a_language_outside_the_six_is_refused() -> None:
    with pytest.raises(TextRefused):
        rules.ask(
            "q1abcd",
            AMINA,
            "Why?",
            "de",
            False,
            settings=PREMOD,
            locked=False,
            words=NOWORDS,
            now=1,
        )


def test_moderator_approves_rejects_with_a_reason_answers_and_archives() -> None:
    q = rules.approve(_ask(), MOD, 110.0)
    assert (q.state, q.decided) == (QState.APPROVED, 110.0)
    assert rules.answer(q, MOD, 120.0).state is QState.ANSWERED
    rejected = rules.reject(_ask(), OPS, "  Off topic  ", 111.0)
    assert (rejected.state, rejected.reason) == (QState.REJECTED, "Off topic")
    assert rules.approve(rejected, MOD, 112.0).reason == ""
    assert rules.archive(q, MOD, 130.0).state is QState.ARCHIVED


@pytest.mark.parametrize(
    ("action", "state"),
    [
        ("approve", QState.APPROVED),
        ("approve", QState.ANSWERED),
        ("answer", QState.PENDING),
        ("answer", QState.REJECTED),
        ("reject", QState.ANSWERED),
        ("reject", QState.ARCHIVED),
        ("archive", QState.ARCHIVED),
    ],
)
def test_moderator_actions_the_state_does_not_allow_are_refused(action: str, state: QState) -> None:
    q = replace(_ask(), state=state)
    decide: Callable[[], object] = {
        "approve": lambda: rules.approve(q, MOD, 1.0),
        "answer": lambda: rules.answer(q, MOD, 1.0),
        "reject": lambda: rules.reject(q, MOD, "no", 1.0),
        "archive": lambda: rules.archive(q, MOD, 1.0),
    }[action]
    with pytest.raises(QuestionConflict):
        decide()


@pytest.mark.parametrize(
    "action",
    ["approve", "reject", "answer", "archive", "edit", "label", "reply", "move", "pin", "merge"],
)
def test_participants_cannot_take_any_moderator_action(action: str) -> None:
    q = _approved()
    calls: dict[str, Callable[[], object]] = {
        "approve": lambda: rules.approve(_ask(), LI, 1.0),
        "reject": lambda: rules.reject(q, LI, "x", 1.0),
        "answer": lambda: rules.answer(q, LI, 1.0),
        "archive": lambda: rules.archive(q, LI, 1.0),
        "edit": lambda: rules.edit(q, AMINA, "Changed", 500),
        "label": lambda: rules.label(q, LI, ["budget"]),
        "reply": lambda: rules.reply(q, LI, "Answer"),
        "move": lambda: rules.move(q, LI, 1.0),
        "pin": lambda: rules.check_pin(q, LI),
        "merge": lambda: rules.check_merge(q, replace(q, id="q2abcd"), LI),
    }
    with pytest.raises(NotAllowed):
        calls[action]()


def test_an_edit_keeps_the_question_but_marks_it_edited() -> None:
    q = rules.edit(_approved(), MOD, "How will this be funded, and by whom?", 500)
    assert (q.text, q.edited, q.state) == (
        "How will this be funded, and by whom?",
        True,
        QState.APPROVED,
    )
    with pytest.raises(QuestionConflict):
        rules.edit(q, MOD, q.text, 500)


def test_labels_are_short_slugs_and_at_most_five() -> None:
    assert rules.label(_approved(), MOD, ["budget", "budget", "SDG-9"]).labels == (
        "budget",
        "SDG-9",
    )
    with pytest.raises(TextRefused):
        rules.label(_approved(), MOD, ["a b"])
    with pytest.raises(TextRefused):
        rules.label(_approved(), MOD, [f"l{i}" for i in range(6)])


def test_only_public_questions_go_on_screen() -> None:
    rules.check_pin(_approved(), MOD)
    with pytest.raises(QuestionConflict):
        rules.check_pin(_ask(), MOD)


def test_a_question_cannot_be_merged_into_itself_or_a_rejected_one() -> None:
    q = _approved()
    with pytest.raises(QuestionConflict):
        rules.check_merge(q, q, MOD)
    with pytest.raises(QuestionConflict):
        rules.check_merge(q, replace(q, id="q2abcd", state=QState.REJECTED), MOD)


def test_participants_see_public_questions_and_their_own_moderators_all_displays_the_public() -> (
    None
):
    pending = _ask()
    assert rules.visible_to(pending, AMINA)
    assert not rules.visible_to(pending, LI)
    assert rules.visible_to(pending, MOD)
    assert not rules.visible_to(pending, DISPLAY)
    assert rules.visible_to(_approved(), DISPLAY)


def test_an_anonymous_question_hides_its_author_from_everyone_but_moderators() -> None:
    q = replace(_approved(), anonymous=True)
    assert q.public_view()["author_name"] == ""
    assert "author" not in q.public_view()
    assert q.staff_view()["author_name"] == "Amina"
    assert q.staff_view()["author"] == "amina"


def test_stored_fields_round_trip() -> None:
    q = replace(_approved(), labels=("a", "b"), held=("x",), reply="Yes", edited=True)
    assert rules.from_fields(rules.to_fields(q), votes=q.votes, version=q.version) == q


def _q(qid: str, group: str, votes: int, created: float) -> Question:
    return replace(_approved(), id=qid, group=group, votes=votes, created=created, rank=created)


def test_orders_by_votes_newest_and_moderator_rank() -> None:
    a, b, c = _q("qa", "g1", 5, 1.0), _q("qb", "g2", 9, 2.0), _q("qc", "g1", 5, 3.0)
    assert [q.id for q in rules.ordered([a, b, c], "votes")] == ["qb", "qa", "qc"]
    assert [q.id for q in rules.ordered([a, b, c], "newest")] == ["qc", "qb", "qa"]
    assert [q.id for q in rules.ordered([c, a, b], "moderator")] == ["qa", "qb", "qc"]


def test_balanced_order_never_gives_a_group_two_slots_in_a_row_while_another_waits_with_votes() -> (
    None
):
    qs = [
        _q("q1", "gov", 10, 1),
        _q("q2", "gov", 9, 2),
        _q("q3", "gov", 8, 3),
        _q("q4", "ngo", 1, 4),
    ]
    assert [q.id for q in rules.ordered(qs, "balanced")] == ["q1", "q4", "q2", "q3"]


@pytest.mark.parametrize(
    "text",
    [
        "hello\u202eevil",
        "zero\u200bwidth",
        "bell\x07",
        "a" + "\u0301" * 8,
        "x" * 501,
        "\n".join("line" for _ in range(11)),
        "",
    ],
    ids=[
        "bidi-override",
        "zero-width",
        "control",
        "combining-flood",
        "too-long",
        "too-many-lines",
        "empty",
    ],
)
def test_text_hygiene_refuses_what_could_mislead_or_flood(text: str) -> None:
    with pytest.raises(TextRefused):
        clean(text, max_chars=500)


def test_text_is_normalised_and_trimmed_and_arabic_and_chinese_pass() -> None:
    assert clean("  e\u0301te   ok  ", max_chars=50) == "\u00e9te ok"
    assert clean("ما هي الخطة؟", max_chars=50) == "ما هي الخطة؟"
    assert clean("这项计划如何资助？", max_chars=50) == "这项计划如何资助？"


def test_byte_cap_is_four_bytes_per_allowed_character() -> None:
    assert clean("😀" * 10, max_chars=10) == "😀" * 10
