"""Classifiers: trigger spans, language id, robustness on hostile input, and mrkdwn escaping."""

from __future__ import annotations

import math
import unicodedata

import pytest

from classifiers.language import LanguageIdentifier
from classifiers.lexicon import SENTIMENT_LABELS
from classifiers.post import MAX_TEXT_CHARS, PostText, clean_text
from classifiers.terms import TermMatcher
from classifiers.triggers import TriggerDetector
from monitor.config import bundled_config_dir
from monitor.models import AlertMessage, Author, Owner, Severity, language_code
from monitor.notifiers.render import MAX_POST_CHARS, escape_mrkdwn, render_mrkdwn, safe_link_target
from tests.support import LEGAL_THREAT, NEUTRAL_CHATTER


@pytest.fixture(scope="module")
def triggers():
    return TriggerDetector(bundled_config_dir() / "triggers")


@pytest.fixture(scope="module")
def language():
    return LanguageIdentifier(["nl", "en", "de", "fr", "es", "it", "pt"])


def one(classifier, text: str, lang: str | None = None):
    (result,) = classifier.classify([PostText(1, text, lang)])
    return result


# --- triggers -------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, lang, category, matched", [
    ("ik stap naar de Radar", "nl", "press", "Radar"),
    ("my lawyer will hear about this", "en", "legal", "lawyer"),
    ("#boycottAcme", "en", "shaming", "#boycottAcme"),
    ("Ik neem een advocaat in de arm als dit zo doorgaat", "nl", "legal", "advocaat"),
    ("I will report this to Ofcom tomorrow", "en", "regulator", "Ofcom"),
])
def test_trigger_category_and_span(triggers, text, lang, category, matched):
    found = triggers.find(text, lang)
    hits = [t for t in found if t.category == category]
    assert hits, found
    t = hits[0]
    assert text[t.start:t.end] == t.matched_text
    assert t.matched_text.lower() == matched.lower()


def test_trigger_spans_through_the_post_classifier(classifier):
    text = "ik stap naar de Radar"
    result = one(classifier, text)
    (press,) = [t for t in result.triggers if t.category == "press"]
    assert text[press.start:press.end] == "Radar"
    assert result.lang == "nl"


def test_trigger_spans_stay_true_with_curly_apostrophes(triggers):
    text = "I’m done, my lawyer’s letter goes out today"
    (legal,) = [t for t in triggers.find(text, "en") if t.category == "legal"]
    assert text[legal.start:legal.end] == legal.matched_text == "lawyer"


@pytest.mark.parametrize("text, lang, category, matched", [
    ("calling my ＬＡＷＹＥＲ now", "en", "legal", "ＬＡＷＹＥＲ"),  # fullwidth letters
    ("calling my 𝐥𝐚𝐰𝐲𝐞𝐫 now", "en", "legal", "𝐥𝐚𝐰𝐲𝐞𝐫"),  # mathematical bold, posted for emphasis
    ("calling my law\u200byer now", "en", "legal", "law\u200byer"),  # a zero-width space inside the word
    ("calling my law\u2066yer\u2069 now", "en", "legal", "law\u2066yer"),  # a direction isolate
    ("ik ga naar de ＲＡＤＡＲ 🤦\u200d♂️", "nl", "press", "ＲＡＤＡＲ"),
    # Decomposed accents (as some keyboards and macOS write them): the mark stays in the span.
    (unicodedata.normalize("NFD", "j'écris au médiateur"), "fr", "regulator", unicodedata.normalize("NFD", "médiateur")),
])
def test_triggers_see_through_lookalike_letters_and_invisible_characters(triggers, text, lang, category, matched):
    found = [t for t in triggers.find(text, lang) if t.category == category]
    assert [(text[t.start:t.end], t.matched_text) for t in found] == [(matched, matched)]


def test_dutch_post_also_checked_against_english_terms(triggers):
    text = "Ik ben er klaar mee, see you in court Acme"
    assert any(t.category == "legal" for t in triggers.find(text, "nl"))


def test_post_of_unknown_language_is_checked_against_every_list(triggers):
    assert any(t.category == "press" for t in triggers.find("naar de Radar", None))
    assert any(t.category == "legal" for t in triggers.find("my lawyer", "xx"))


@pytest.mark.parametrize("text", NEUTRAL_CHATTER + [
    "Thanks Acme, the new router works great!",
    "Heeft iemand een tip voor een goede wifi-versterker?",
    "the weather radar shows rain",  # lower-case ordinary word in English chatter
])
def test_no_trigger_in_ordinary_chatter(classifier, text):
    lang = "en" if text.startswith("the weather") else None
    assert one(classifier, text, lang).triggers == ()


@pytest.mark.parametrize("text, expected", [
    ("Cancelling my subscription today", [("churn", "Cancelling my subscription")]),
    ("Cancelled my service. #anotheronebitesthedust", [("churn", "Cancelled my service")]),
    ("If this isn't fixed I will cancel", [("churn", "will cancel")]),
    ("Ik zeg mijn abonnement op", [("churn", "zeg mijn abonnement op")]),
    # Cancellations that are incidents, not a customer leaving: a complaint, no churn threat.
    ("My flight was cancelled and nobody tells me why", []),
    ("The driver cancelled my ride and I got a cancellation fee", []),
    # Exceptions: the term in another sense.
    ("My Fire TV Stick keeps restarting", []),
    ("this new album is fire", []),
    ("RT to win a free year of broadband!", []),
    ("The charger caught fire last night", [("safety", "fire")]),
])
def test_trigger_phrases_and_exceptions(triggers, text, expected):
    found = [(t.category, t.matched_text) for t in triggers.find(text, "nl" if text.startswith("Ik") else "en")]
    assert found == expected


def test_an_exception_is_a_list_of_phrases(tmp_path):
    (tmp_path / "en.yaml").write_text("language: en\ntriggers: {legal: [lawyer]}\nexceptions: lawyer joke\n")
    with pytest.raises(ValueError, match="exceptions must be a list of phrases"):
        TriggerDetector(tmp_path)


def test_term_needs_word_boundaries(triggers):
    # "sue" is a legal term; "issue" and "pursue" are not threats.
    assert not any(t.category == "legal" for t in triggers.find("there is an issue I want to pursue", "en"))


def test_term_matcher_prefers_the_longest_term_that_ends_at_a_word_boundary():
    matcher = TermMatcher([("churn", "klant*"), ("service", "klantenservice"), ("bad", "slecht"),
                           ("bad-service", "slechte service"), ("shaming", "#boycott")])

    def found(text):
        return [(label, text[start:end]) for label, _, start, end in matcher.finditer(text)]

    assert found("De KLANTENSERVICE is slecht") == [("service", "KLANTENSERVICE"), ("bad", "slecht")]
    assert found("klanten en klantje") == [("churn", "klanten"), ("churn", "klantje")]
    assert found("wat een slechte \n service, #boycott") == [("bad-service", "slechte \n service"),
                                                              ("shaming", "#boycott")]
    # A longer term that fails gives way to no match, not to a shorter term inside a word.
    assert found("slechte slechter #boycotten") == []
    # A wildcard may end any word of a phrase.
    phrase = TermMatcher([("churn", "zeg* mijn abonnement* op"), ("churn", "klant*")])
    assert [(label, term) for label, term, *_ in phrase.finditer("Ik zegde mijn abonnementen op, klanten")] == [
        ("churn", "zeg* mijn abonnement* op"), ("churn", "klant*")]
    # A term as long as a post is one more term, not a recursion error.
    assert [label for label, *_ in TermMatcher([("long", "a" * 5000)]).finditer("a" * 5000)] == ["long"]


# --- language ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("Ik ben heel tevreden over de snelle installatie van mijn nieuwe internetverbinding", "nl"),
    ("Mijn internet valt al de hele week elke avond uit en niemand belt me terug", "nl"),
    ("I am very happy with the quick installation of my new internet connection", "en"),
    ("My internet has been dropping every evening this week and nobody calls me back", "en"),
])
def test_language_of_clear_sentences(language, text, expected):
    assert language.identify(text) == expected


@pytest.mark.parametrize("text", ["a internet caiu de novo", "sem internet desde ontem"])
def test_language_named_when_lingua_leans_to_one_but_is_unsure(language, text):
    # Short Portuguese posts that lingua finds close to Spanish or Italian: unnamed, the English
    # transformer would read them.
    assert language.identify(text) == "pt"


@pytest.mark.parametrize("text", ["ok", "", "👍👍👍", "12345 678", "!!!", "@Vodafone_NL ??", "@NS_online 👍👍 https://t.co/abcdefgh"])
def test_language_none_when_too_short_to_tell(language, text):
    assert language.identify(text) is None


@pytest.mark.parametrize("tag, expected", [
    ("pt-BR", "pt"), ("NL", "nl"), ("en_GB", "en"), (" de ", "de"), ("in", "id"),
    ("und", None), ("qme", None), ("qht", None), ("zxx", None), ("", None), ("12", None), ("x-pig-latin", None),
    (None, None), (7, None),
])
def test_source_language_tags_are_read_as_their_language(tag, expected):
    assert language_code(tag) == expected


def test_a_post_tagged_with_a_region_gets_its_language(classifier):
    assert one(classifier, "Ik stap naar de Radar", "nl-NL").lang == "nl"
    # A tag that names no language leaves the post to language identification.
    assert one(classifier, "Mijn internet valt al de hele week elke avond uit", "und").lang == "nl"


def test_unknown_language_code_in_config_is_a_clear_error():
    with pytest.raises(ValueError, match="xx"):
        LanguageIdentifier(["nl", "xx"])
    with pytest.raises(ValueError):
        LanguageIdentifier(["nl"])


# --- robustness ---------------------------------------------------------------------------------------

HOSTILE = {
    "empty": "",
    "whitespace": " \n\t ",
    "huge": ("Acme is terrible, my lawyer will hear about this! " * 2100)[:100_000],
    "binary": "\x00\x01\xff" * 100,
    "surrogate-free emoji": "😡" * 500,
    "control chars": "\x1b[31mred\x1b[0m \u202e reversed \u200b",
    "format characters only": "\u200b\u2063\ufeff\u00ad",
}


@pytest.mark.parametrize("name", list(HOSTILE))
@pytest.mark.parametrize("lang", [None, "zz", "nl"])
def test_post_classifier_survives_hostile_input(classifier, name, lang):
    result = one(classifier, HOSTILE[name], lang)
    assert result.sentiment in SENTIMENT_LABELS
    assert set(result.sentiment_scores) == set(SENTIMENT_LABELS)
    assert all(0.0 <= p <= 1.0 for p in result.sentiment_scores.values())
    assert math.isclose(sum(result.sentiment_scores.values()), 1.0, abs_tol=1e-3)
    assert 0.0 <= result.complaint <= 1.0
    assert result.sentiment == max(result.sentiment_scores, key=result.sentiment_scores.__getitem__)
    if lang is not None:
        assert result.lang == lang  # a source's label is kept, even one the classifier does not know
    for t in result.triggers:
        assert 0 <= t.start < t.end <= MAX_TEXT_CHARS


@pytest.mark.parametrize("text", ["", " \n\t ", "\x00\x01"])
def test_a_post_without_text_is_neutral_and_no_complaint(classifier, text):
    """An image or a video alone: nothing said, so nothing to count as anger (a model reads its
    empty input as some sentiment: the bundled one as negative)."""
    result = one(classifier, text, "en")
    assert result.sentiment == "neutral" and result.sentiment_scores["neutral"] == 1.0
    assert result.complaint == 0.0 and not result.triggers


def test_huge_post_is_cut_and_still_read(classifier):
    result = one(classifier, HOSTILE["huge"], "en")
    assert any(t.category == "legal" for t in result.triggers)
    assert result.sentiment == "negative"


def test_clean_text_drops_control_characters_and_caps_length():
    cleaned = clean_text("a\x00b\x01c\nd" + "x" * 5000)
    assert "\x00" not in cleaned and "\x01" not in cleaned
    assert cleaned.startswith("a b c\nd")
    assert len(cleaned) == MAX_TEXT_CHARS


@pytest.mark.parametrize("invisible", ["\u200b", "\u00ad", "\u200f", "\u2060", "\u202e"])
def test_a_trigger_split_by_an_invisible_character_is_found_through_the_classifier(classifier, invisible):
    text = f"Calling my law{invisible}yer about this"
    result = one(classifier, text, "en")
    assert [(t.category, text[t.start:t.end]) for t in result.triggers] == [("legal", f"law{invisible}yer")]


def test_batch_keeps_order_and_ids(classifier):
    posts = [PostText(7, LEGAL_THREAT, None), PostText(3, NEUTRAL_CHATTER[1], None), PostText(9, "", None)]
    results = classifier.classify(posts)
    assert [r.mention_id for r in results] == [7, 3, 9]
    assert results[0].sentiment == "negative" and results[0].triggers
    assert results[1].sentiment != "negative" and not results[1].triggers
    assert classifier.classify([]) == []


def test_sentiment_direction(classifier):
    negative = one(classifier, "Absolutely terrible service, worst provider ever, I hate this", "en")
    positive = one(classifier, "Great service, thanks so much, the engineer was brilliant", "en")
    assert negative.sentiment == "negative" and positive.sentiment == "positive"
    assert negative.negative > positive.negative
    complaint = one(classifier, "Internet down again for the third day, nobody answers the phone, terrible", "en")
    praise = one(classifier, "Great service, thanks so much, the engineer was brilliant", "en")
    assert complaint.complaint > 0.5 > praise.complaint


# --- mrkdwn escaping ------------------------------------------------------------------------------------

LIVE_SYNTAX = ["<!channel>", "<!here>", "<!everyone>", "<@U123>", "<#C123>", "<https://evil|x>",
               "<!subteam^S123>", "<mailto:a@b.c|mail>"]


@pytest.mark.parametrize("payload", LIVE_SYNTAX + [" ".join(LIVE_SYNTAX), "a<b>c<<!channel>>"])
def test_escape_mrkdwn_leaves_no_live_syntax(payload):
    escaped = escape_mrkdwn(f"hey {payload} there")
    assert "<" not in escaped and ">" not in escaped
    assert "&lt;" in escaped


def test_escape_mrkdwn_drops_controls_and_direction_overrides():
    assert escape_mrkdwn("refund\u202e won nu \x1b[31mnow\x00 \u2067x\u2069 done") == "refund won nu [31mnow x done"
    assert escape_mrkdwn("שלום world") == "שלום world"  # right-to-left text itself is kept


def test_escape_mrkdwn_escapes_ampersand_first():
    assert escape_mrkdwn("a & b <c>") == "a &amp; b &lt;c&gt;"
    # An already-escaped entity in a post is shown literally, not turned into a "<".
    assert escape_mrkdwn("&lt;!channel&gt;") == "&amp;lt;!channel&amp;gt;"


def test_escape_mrkdwn_caps_length_with_ellipsis():
    escaped = escape_mrkdwn("a" * 1000)
    assert len(escaped) == MAX_POST_CHARS
    assert escaped.endswith("…")
    short = escape_mrkdwn("word " * 10, limit=12)
    assert len(short) <= 12 and short.endswith("…")
    assert escape_mrkdwn("exactly ten", limit=11) == "exactly ten"


def test_escape_mrkdwn_caps_after_escaping_and_never_inside_an_entity():
    escaped = escape_mrkdwn("&" * 600)
    assert len(escaped) <= MAX_POST_CHARS and escaped == "&amp;" * 99 + "…"
    for n in range(1, 8):
        cut = escape_mrkdwn("x" * n + "<" * 50, limit=20)
        assert len(cut) <= 20 and cut.endswith("&lt;…"), cut


def test_a_long_alert_stays_within_slacks_section_limit():
    alert = AlertMessage(
        escalation_id=1, kind="new", brand="&" * 200, severity=Severity.high, title="Escalation risk", source="x",
        author=Author("1", "<" * 200, 10, False), text="I will sue & " * 400, url="https://news.example/" + "a" * 600,
        reasons=("&" * 600,) * 3, owner=Owner("Sanne", "U01SANNE", ">" * 600), change="<" * 600,
    )
    text = render_mrkdwn(alert)
    assert len(text) <= 3000 and "Open the post" not in text  # a link cut short would lead nowhere


def test_escape_mrkdwn_collapses_newlines():
    assert escape_mrkdwn("line one\n\n> quoted\r\nline") == "line one &gt; quoted line"


@pytest.mark.parametrize("word", ["@channel", "@here", "@everyone", "@Channel", "@HERE"])
def test_broadcast_words_get_a_zero_width_joiner(word):
    escaped = escape_mrkdwn(f"hello {word} look")
    assert word not in escaped
    assert "@\u2060" + word[1:] in escaped


def test_ordinary_mentions_are_left_alone():
    assert escape_mrkdwn("@acme_care @channel4news") == "@acme_care @channel4news"


def test_rendered_alert_has_only_our_own_markup():
    hostile = "<!channel> pay now <https://evil.example|acme.com> <@U0BOSS> @here"
    alert = AlertMessage(
        escalation_id=1, kind="new", brand="Acme <!here>", severity=Severity.high, title="Escalation risk",
        source="x", author=Author("1", "evil<!channel>", 10, False), text=hostile, url="https://x.example/1",
        reasons=("legal threat: \"<!channel>\"",), owner=Owner("Sanne", "U01SANNE", "speaks en <@U999>"),
    )
    text = render_mrkdwn(alert)
    for live in ("<!channel>", "<!here>", "<@U0BOSS>", "<https://evil.example", "<@U999>"):
        assert live not in text
    # The only live markup left is the link to the post and the suggested owner's mention.
    opened = [chunk.split(">")[0] for chunk in text.split("<")[1:]]
    assert opened == ["https://x.example/1|Open the post", "@U01SANNE"]
    assert "@\u2060here" in text


def test_link_target_cannot_break_out_of_slack_link_syntax():
    target = safe_link_target("https://x.com/a?b=1&c=<!channel>|click here")
    assert "<" not in target and ">" not in target and "|" not in target and " " not in target
    assert "&amp;" in target


# --- measuring ------------------------------------------------------------------------------------------

def test_sentiment_report_averages_over_the_labels_that_occur():
    from classifiers.metrics import sentiment_report

    perfect = sentiment_report(["negative", "positive"], ["negative", "positive"])
    assert perfect == {"n": 2, "macro_recall": 1.0, "macro_f1": 1.0, "accuracy": 1.0}
    # A class predicted but never true still counts: reading a post as neutral that is not is a miss.
    assert sentiment_report(["negative", "positive"], ["negative", "neutral"])["macro_recall"] == pytest.approx(0.3333, abs=1e-4)


@pytest.mark.parametrize("file, header, bad", [
    ("sentiment/dutch_tweets_polarity.tsv", "label\ttext", "Neutral\tgeen idee"),
    ("complaints/complaints_dev.tsv", "text\tis_complaint", "my order never came\tyes"),
])
def test_training_data_with_a_label_not_ours_is_a_data_error_naming_the_line(tmp_path, file, header, bad):
    from classifiers.training import DataError, read_tsv

    path = tmp_path / file.replace("/", "_")
    path.write_text(f"{header}\n{bad}\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"{path.name} line 2: \w+ '(Neutral|yes)' is not one of"):
        read_tsv(path, tuple(header.split("\t")))


@pytest.mark.parametrize("text, positive, negative", [
    ("good", 1, 0),
    ("not good", 0, 1),
    ("not at all very good", 0, 1),  # three tokens between: still in the negator's span
    ("not at all that very good", 1, 0),  # four: out of it
    ("not sure yet, but honestly good", 1, 0),
    ("no, I said it is not good", 0, 1),  # the nearest negator counts
    ("not bad " * 400, 250, 0),  # a long post, read up to 2,000 characters: every cue still weighed
])
def test_lexicon_flips_a_cue_within_three_tokens_after_a_negator(text, positive, negative):
    from classifiers.lexicon import Lexicon

    features = Lexicon(bundled_config_dir() / "lexicons").features(text)
    assert (features[0], features[1]) == (positive, negative)
