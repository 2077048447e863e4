"""Built-in, dependency-free language and category detection for prompts.

Used only when the caller gives no ``language`` / ``category``; the result lands in the record
like a given value (the record's metadata says ``detected: ["language", ...]``).

**Language** (ISO 639-1): the prompt's lower-cased words are counted against a short profile
of very frequent function words ("stop words") for each supported language: English, Italian,
Indonesian, Spanish, French, German, Portuguese. The language with the most hits wins when it
has at least one hit and beats the runner-up; a tie or no hit gives ``None`` (undetermined)
rather than a guess. Short greetings are covered by adding each language's greeting words to
its profile. Good enough to split dashboards by language; not a general language identifier.

**Category**: keyword rules, first match wins:

1. ``business`` when any business word appears (order, invoice, price, refund, contract,
   delivery, account… in the supported languages);
2. ``greeting`` when a greeting or thanks word appears and the prompt is short (≤ 8 words);
3. ``casual`` otherwise.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)

STOPWORDS: dict[str, frozenset[str]] = {
    "en": frozenset(
        "the a an and or is are was were be been to of in on for with that this it you your "
        "i my me we our what how why can could would will do does not have has please "
        "hello hi hey thanks thank morning evening".split()
    ),
    "it": frozenset(
        "il lo la i gli le un una e è di da in con su per che non sono sei ho hai come "
        "perché cosa mi ti ci vi mio tuo del della dei nel alla al grazie ciao buongiorno "
        "buonasera salve vorrei potrei posso quando dove anche".split()
    ),
    "id": frozenset(
        "yang dan di ke dari ini itu dengan untuk tidak ada saya aku kamu anda kami kita "
        "apa bagaimana kenapa mengapa bisa akan sudah belum juga atau pada dalam halo hai "
        "terima kasih selamat pagi siang sore malam tolong mau ingin berapa".split()
    ),
    "es": frozenset(
        "el la los las un una y es son de del en con por para que no yo tú usted mi su "
        "como qué cómo dónde cuando hola gracias buenos buenas días quiero puedo está".split()
    ),
    "fr": frozenset(
        "le la les un une et est sont de des du en dans avec pour que qui ne pas je tu "
        "vous nous mon votre comment pourquoi bonjour bonsoir merci salut est-ce suis".split()
    ),
    "de": frozenset(
        "der die das ein eine und ist sind zu von mit für nicht ich du sie wir mein "
        "ihr wie warum was hallo danke guten morgen tag bitte kann können habe".split()
    ),
    "pt": frozenset(
        "o a os as um uma e é são de do da em com por para que não eu você meu seu "
        "como porque onde quando olá obrigado obrigada bom dia boa tarde noite quero".split()
    ),
}

GREETING_WORDS = frozenset(
    "hi hello hey hiya howdy morning evening afternoon thanks thank thx bye goodbye "
    "ciao buongiorno buonasera salve grazie arrivederci "
    "halo hai selamat pagi siang sore malam terima kasih "
    "hola gracias bonjour bonsoir merci salut hallo danke olá obrigado obrigada".split()
)

BUSINESS_WORDS = frozenset(
    "order orders invoice invoices price prices pricing quote refund refunds payment pay paid "
    "contract contracts delivery shipping shipment account billing subscription discount "
    "purchase buy sell sales customer supplier product products stock warranty receipt tax vat "
    "ordine ordini fattura fatture prezzo prezzi preventivo rimborso pagamento contratto "
    "consegna spedizione conto abbonamento sconto acquisto cliente fornitore prodotto garanzia "
    "pesanan pesan faktur harga bayar pembayaran kontrak pengiriman kirim akun langganan "
    "diskon beli jual pelanggan produk garansi tagihan "
    "pedido factura precio pago reembolso commande facture prix paiement "
    "rechnung preis bestellung zahlung".split()
)

CATEGORIES = ("greeting", "casual", "business")
GREETING_MAX_WORDS = 8


# Detection runs on the request path (routing needs the category before the answer), so it
# reads a bounded part of the prompt: the head and the tail (where a long prompt's question
# usually is), never the whole of a 20 MB paste.
SCAN_CHARS = 4096


def scanned(text: str | None) -> str:
    """The part of ``text`` that detection reads: all of it up to ``2 * SCAN_CHARS``, else
    its first and last ``SCAN_CHARS`` characters."""
    text = text or ""
    if len(text) <= 2 * SCAN_CHARS:
        return text
    return f"{text[:SCAN_CHARS]} {text[-SCAN_CHARS:]}"


def words(text: str | None) -> list[str]:
    return _WORD.findall(scanned(text).lower())


# word -> indexes of the languages whose profile holds it (one lookup a word, not seven)
_LANGS = tuple(STOPWORDS)
_INDEX: dict[str, tuple[int, ...]] = {}
for _i, _lang in enumerate(_LANGS):
    for _w in STOPWORDS[_lang]:
        _INDEX[_w] = (*_INDEX.get(_w, ()), _i)


def detect_language(text: str | None) -> str | None:
    """ISO 639-1 code of the most likely language, or None when undetermined."""
    return _language(words(text))


def language_of(tokens: list[str]) -> str | None:
    """:func:`detect_language` of words already split and lowercased (the router's)."""
    return _language(tokens)


def detect_category(text: str | None) -> str:
    """``business``, ``greeting`` or ``casual`` by the rules in the module docstring."""
    return _category(words(text))


def detect(text: str | None) -> tuple[str | None, str]:
    """(language, category) with one tokenisation of the text."""
    tokens = words(text)
    return _language(tokens), _category(tokens)


def _language(tokens: list[str]) -> str | None:
    scores = [0] * len(_LANGS)
    for token in tokens:
        for i in _INDEX.get(token, ()):
            scores[i] += 1
    best = max(scores)
    if best == 0 or scores.count(best) > 1:
        return None
    return _LANGS[scores.index(best)]


def _category(tokens: list[str]) -> str:
    if any(t in BUSINESS_WORDS for t in tokens):
        return "business"
    if tokens and len(tokens) <= GREETING_MAX_WORDS and any(t in GREETING_WORDS for t in tokens):
        return "greeting"
    return "casual"
