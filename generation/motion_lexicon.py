"""The common motion words of Spanish, German, French and Portuguese, read as English.

``to_english(text)`` lower-cases ``text``, strips accents ("parpadéo", "lächeln" -> "lacheln"),
moves a negation written after its verb in front of it ("blinzle nicht" -> "nicht blinzle",
"cligne pas" -> "pas cligne") and replaces every word or phrase of ``LEXICON`` by its English
meaning, so that ``generation.motion`` parses "parpadeo suave" exactly as "blink gentle" and a
Spanish prompt gives the same ``MotionSpec`` as its English twin. Words it does not know are kept
as they are (the text-conditioned models still receive the user's own words).

An entry ending in ``*`` matches every word starting with it ("parpade*": parpadea, parpadeo,
parpadeando). Entries are written without accents, in lower case. English words that other
languages share ("no", "natural", "zoom") need no entry; words that mean something else in
English ("pan" is bread in Spanish, "die" an article in German) are left out on purpose.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Mapping
from types import MappingProxyType

_ENTRIES: dict[str, str] = {
    # --- blink / eyes ---------------------------------------------------------------------------
    "parpade*": "blink", "pestane*": "blink", "pestanhe*": "blink", "pisca*": "blink",
    "pisque*": "blink", "piscar": "blink", "pestanej*": "blink", "clign*": "blink",
    "battement de cils": "blink", "blinzel*": "blink", "blinzl*": "blink", "lidschlag": "blink",
    "guin*": "wink", "clin d oeil": "wink", "zwinker*": "wink", "augenzwinkern": "wink",
    "ojos": "eyes", "olhos": "eyes", "yeux": "eyes", "augen": "eyes",
    "ojo": "eye", "olho": "eye", "oeil": "eye", "auge": "eye",
    "cierra": "closes", "cierre": "close", "cerrar": "close", "cerrando": "closing",
    "fecha": "closes", "feche": "close", "fechar": "close", "fechando": "closing",
    "ferme": "closes", "fermer": "close", "fermant": "closing", "schliesst": "closes",
    "schliess": "close", "schliessen": "close",
    "cerrada": "closed", "cerrado": "closed", "cerrados": "closed", "cerradas": "closed",
    "fechada": "closed", "fechado": "closed", "fechados": "closed", "fechadas": "closed",
    "fermee": "closed", "fermees": "closed", "geschlossen": "closed",
    "abiertos": "open", "abierta": "open", "abiertas": "open", "abierto": "open",
    "abertos": "open", "aberta": "open", "abertas": "open", "aberto": "open",
    "ouverts": "open", "ouvert": "open", "ouverte": "open", "ouvertes": "open", "offen": "open",
    # --- head -----------------------------------------------------------------------------------
    "cabeza": "head", "cabeca": "head", "tete": "head", "kopf": "head",
    "inclin*": "tilt", "lade*": "tilt", "penche*": "tilt", "pencher": "tilt", "neigt": "tilts",
    "neige": "tilt", "neigen": "tilt", "neigung": "tilt", "kopfneigung": "head tilt",
    "schief": "tilt",
    "gira": "turns", "girar": "turn", "gire": "turn", "girando": "turning", "giro": "turn",
    "voltea": "turns", "voltear": "turn", "vira": "turns", "virar": "turn", "vire": "turn",
    "virando": "turning", "tourne": "turns", "tourner": "turn", "tournant": "turning",
    "dreht": "turns", "drehen": "turn", "dreh": "turn", "drehung": "turn", "wendet": "turns",
    "kopfdrehung": "head turn",
    "asient*": "nods", "asentir": "nod", "cabece*": "nods", "acena com a cabeca": "nods",
    "aceno com a cabeca": "nod", "hoche la tete": "nods", "hocher la tete": "nod",
    "hochement de tete": "nod", "acquiesce": "nods", "nickt": "nods", "nicken": "nod",
    "nicke": "nod", "nickend": "nodding", "kopfnicken": "nod",
    "mira": "looks", "mirar": "look", "mirando": "looking", "olha": "looks", "olhar": "look",
    "olhando": "looking", "regarde": "looks", "regarder": "look", "blickt": "looks",
    "schaut": "looks", "schau": "look", "blick": "look",
    # --- breathing ------------------------------------------------------------------------------
    "respir*": "breathing", "atmet": "breathes", "atmen": "breathing", "atme": "breathe",
    "atmung": "breathing", "atmend": "breathing", "suspir*": "sighs", "soupir*": "sighs",
    "seufz*": "sighs", "pecho": "chest", "peito": "chest", "poitrine": "chest",
    "brust": "chest",
    # --- smile ----------------------------------------------------------------------------------
    "sonri*": "smile", "sonre*": "smile", "sorri*": "smile", "sourire": "smile",
    "sourit": "smiles", "souris": "smile", "souriant*": "smiling", "lachel*": "smile",
    "lachl*": "smile", "rie": "laughs", "reir": "laugh", "riendo": "laughing", "risa": "laugh",
    "ri": "laughs", "rir": "laugh", "rindo": "laughing", "risada": "laugh", "rit": "laughs",
    "rire": "laugh", "riant": "laughing", "lacht": "laughs", "lachen": "laugh",
    "lachend": "laughing", "grinst": "grins", "grinsen": "grin", "boca": "mouth",
    "bouche": "mouth", "mund": "mouth", "labios": "lips", "labio": "lip", "labios cerrados": "lips closed",
    "levres": "lips", "lippen": "lips", "dientes": "teeth", "dentes": "teeth", "dents": "teeth",
    "zahne": "teeth",
    # --- hair, wind, fabric ---------------------------------------------------------------------
    "pelo": "hair", "cabello*": "hair", "melena": "hair", "rizos": "curls", "cabelo*": "hair",
    "cheveux": "hair", "chevelure": "hair", "meches": "locks", "haare": "hair", "haar": "hair",
    "locken": "curls", "viento": "wind", "vento": "wind", "vent": "wind", "brisa": "breeze",
    "brise": "breeze",
    "ondea*": "waving", "ondul*": "waving", "balance*": "sways", "balanca*": "sways",
    "balanco": "sway", "mece*": "sways", "wiegt": "sways", "weht": "blows", "wehen": "blowing",
    "flatter*": "flutters", "flotte": "flutters", "mueve": "moves", "mover": "move",
    "moviendo": "moving", "movimiento*": "movement", "mexe": "moves", "mexer": "move", "mexa": "move", "mexendo": "moving",
    "movimento*": "movement", "bouge": "moves", "bouger": "move", "mouvement*": "movement",
    "bewegt": "moves", "bewegen": "move", "bewegung*": "movement",
    "vestido": "dress", "kleid": "dress", "robe": "dress", "falda": "skirt", "saia": "skirt",
    "jupe": "skirt", "bufanda": "scarf", "cachecol": "scarf",
    "echarpe": "scarf", "schal": "scarf", "tela": "fabric", "tecido": "fabric",
    "tissu": "fabric", "stoff": "fabric", "velo": "veil", "veu": "veil", "voile": "veil",
    "schleier": "veil", "handbewegung*": "hand movement", "kopfbewegung*": "head movement",
    "mundbewegung*": "mouth movement", "lippenbewegung*": "lip movement",
    "kamerabewegung*": "camera movement", "armbewegung*": "arm movement", "camisa": "shirt", "chemise": "shirt", "hemd": "shirt",
    # --- camera ---------------------------------------------------------------------------------
    "acercamiento": "zoom in", "acerca*": "zoom in", "aproxima*": "zoom in",
    "zoom avant": "zoom in", "zoom arriere": "zoom out", "rapproche*": "move closer",
    "heranzoomen": "zoom in", "ranzoomen": "zoom in", "herauszoomen": "zoom out",
    "aleja*": "pull back", "afasta*": "pull back", "eloigne*": "pull back",
    "paneo": "pan", "panoramica": "pan", "panoramique": "pan", "schwenk*": "pan",
    "camara": "camera", "kamera": "camera",
    "fondo": "background", "fundo": "background", "arriere plan": "background",
    "hintergrund": "background", "quieto": "still", "quieta": "still", "quietos": "still",
    "parado": "still", "parada": "still", "immobile": "still", "immobiles": "still",
    "ruhig": "still", "fija": "fixed", "fijo": "fixed", "fixa": "fixed", "fixo": "fixed",
    "fixe": "fixed", "fest": "fixed", "statisch": "static", "estatica": "static",
    "estatico": "static", "statique": "static",
    "manos": "hands", "mano": "hand", "maos": "hands", "mao": "hand", "mains": "hands",
    "hande": "hands", "brazos": "arms", "bracos": "arms", "arme": "arms",
    # --- speech (a negated one becomes "keep the mouth closed") ----------------------------------
    "habla": "talks", "hablar": "talking", "hable": "talk", "hablando": "talking",
    "hables": "talk", "fala": "talks", "falar": "talking", "fale": "talk", "falando": "talking",
    "parle": "talks", "parler": "talking", "parlant": "talking", "spricht": "talks",
    "sprechen": "talking", "sprich": "talk", "reden": "talking", "redet": "talks",
    "rede": "talk", "decir nada": "say anything", "dizer nada": "say anything",
    # --- directions -----------------------------------------------------------------------------
    "izquierda": "left", "esquerda": "left", "gauche": "left", "links": "left",
    "derecha": "right", "direita": "right", "droite": "right", "rechts": "right",
    "arriba": "up", "para cima": "up", "en haut": "up", "vers le haut": "up", "nach oben": "up",
    "abajo": "down", "para baixo": "down", "en bas": "down", "vers le bas": "down",
    "nach unten": "down", "hacia": "toward", "a la": "to the", "al": "to the",
    # --- intensity ------------------------------------------------------------------------------
    "muy": "very", "muito": "very", "sehr": "very", "tres doux": "very gentle",
    "tres douce": "very gentle", "tres doucement": "very gently", "tres leger*": "very slight",
    "tres subtil*": "very subtle", "tres lent*": "very slow", "tres fort*": "very strong",
    "suave*": "gentle", "suavidad": "gentle", "ligero": "slight", "ligera": "slight",
    "ligeramente": "slightly", "ligeiro": "slight", "ligeira": "slight",
    "ligeiramente": "slightly", "leve": "slight", "levemente": "slightly", "sutilmente": "subtly",
    "subtilement": "subtly", "sutil*": "subtle", "subtil*": "subtle", "doux": "gentle", "douce": "gentle",
    "doucement": "gently", "leger": "slight", "legere": "slight", "legerement": "slightly",
    "lento": "slow", "lenta": "slow", "lentamente": "slowly", "lent": "slow", "lente": "slow",
    "lentement": "slowly", "despacio": "slowly", "devagar": "slowly", "langsam*": "slow",
    "sanft*": "gentle", "leicht*": "slight", "zart*": "gentle", "sacht*": "gentle",
    "ruhige*": "calm", "tranquil*": "calm", "calme": "calm", "un poco": "a little",
    "um pouco": "a little", "un peu": "a little", "ein wenig": "a little",
    "ein bisschen": "a little", "apenas": "barely", "a peine": "barely", "kaum": "barely",
    "fuerte": "strong", "forte": "strong", "fort": "strong", "stark*": "strong",
    "kraftig*": "strong", "grande": "big", "grand": "big", "gross*": "big", "mucho": "much",
    "beaucoup": "much", "viel": "much", "intenso": "intense", "intensa": "intense",
    "intensiv*": "intense", "exagerad*": "exaggerated", "exagere*": "exaggerated",
    "ubertrieben*": "exaggerated",
    # --- negation and clause words ----------------------------------------------------------------
    "sin": "without", "sem": "without", "sans": "without", "ohne": "without",
    "nao": "no", "nunca": "never", "jamas": "never", "jamais": "never", "nie": "never",
    "niemals": "never", "nicht": "not", "kein*": "no", "pas de": "no", "pas": "not",
    "ne": "", "n": "", "ni": "nor", "nem": "nor", "evita*": "avoid", "evite*": "avoid",
    "vermeide*": "avoid", "manten*": "keep", "mantenha": "keep",
    "manter": "keep", "garde": "keep", "garder": "keep", "gardez": "keep", "halte": "keep",
    "halten": "keep", "behalte": "keep", "y": "and", "e": "and", "et": "and", "und": "and",
    "pero": "but", "mais": "but", "aber": "but", "luego": "then",
    "depois": "then", "puis": "then", "dann": "then", "con": "with", "com": "with",
    "avec": "with", "mit": "with", "mientras": "while", "enquanto": "while",
    "pendant que": "while", "wahrend": "while",
    # articles and possessives, so that "cierra los ojos" reads "closes the eyes"
    "el": "the", "la": "the", "los": "the", "las": "the", "le": "the", "les": "the",
    "os": "the", "der": "the", "das": "the", "den": "the", "dem": "the",
    "su": "her", "sus": "her", "seu": "her", "sua": "her", "seus": "her", "suas": "her",
    "sa": "her", "ses": "her", "sein": "her", "seine": "her", "seinen": "her",
    "ihr": "her", "ihre": "her", "ihren": "her",
    # indefinite articles and "of (the)", "to (the)", "in (the)": dropped, like "a" and "of"
    # (none of them an English word: "do" and "no" stay English)
    "un": "", "une": "", "una": "", "unos": "", "unas": "", "um": "", "uma": "", "uns": "",
    "umas": "", "ein": "", "eine": "", "einen": "", "einem": "", "eines": "", "einer": "",
    "de": "", "des": "", "du": "", "del": "", "da": "", "dos": "", "au": "",
    "aux": "", "zu": "", "zum": "", "zur": "", "en": "", "dans": "", "na": "", "im": "",
}  # fmt: skip

LEXICON: Mapping[str, str] = MappingProxyType(_ENTRIES)

# French elision: "n'ouvre", "d'oeil", "qu'il" (English "don't" keeps its apostrophe)
_ELISION = re.compile(r"\b([nldjsctm]|qu)'(?=\w)")
# A negation written after its verb: "blinzle nicht", "ne cligne pas", "sprich nicht".
_POSTPOSED = re.compile(r"\b(\w+) (nicht|pas)\b(?! de\b)")
_WORD = re.compile(r"\w+")


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _alternation(entries: Mapping[str, str]) -> re.Pattern[str]:
    parts: list[str] = []
    for key in sorted(entries, key=lambda k: (-len(k), k)):
        star = key.endswith("*")
        body = re.escape(key[:-1] if star else key).replace(r"\ ", " ")
        parts.append(body + (r"\w*" if star else ""))
    return re.compile(r"(?<!\w)(?:" + "|".join(parts) + r")(?!\w)")


class MotionLexicon:
    """A compiled lexicon (build once; ``to_english`` is then a pure function of its input).

    The alternation of all its words is compiled on the first text that may hold one of them
    (~10 ms): an English prompt, whose words start no entry, never pays for it."""

    def __init__(self, entries: Mapping[str, str] = LEXICON) -> None:
        self._entries = entries
        self._exact = {k: v for k, v in entries.items() if not k.endswith("*")}
        self._prefixes = sorted(
            ((k[:-1], v) for k, v in entries.items() if k.endswith("*")),
            key=lambda kv: -len(kv[0]),
        )
        # What a match needs: a word that is an entry of one word, or starts with one ending in
        # "*", or the text of an entry of several words.
        self._words = frozenset(k for k in entries if " " not in k and "*" not in k)
        self._word_prefixes = tuple(k[:-1] for k in entries if k.endswith("*") and " " not in k)
        self._phrases = tuple(k.rstrip("*") for k in entries if " " in k)

    @functools.cached_property
    def _pattern(self) -> re.Pattern[str]:
        return _alternation(self._entries)

    def to_english(self, text: str) -> str:
        """``text`` lower-cased, accent-free, with known foreign motion words in English."""
        folded = _ELISION.sub(r"\1 ", _fold(text).replace("\u2019", "'"))
        folded = _POSTPOSED.sub(lambda m: f"{m.group(2)} {m.group(1)}", folded)
        if self._may_match(folded):
            folded = self._pattern.sub(lambda m: self._meaning(m.group(0)), folded)
        return " ".join(folded.split(" ")).replace("  ", " ")

    def _may_match(self, folded: str) -> bool:
        return any(phrase in folded for phrase in self._phrases) or any(
            word in self._words or word.startswith(self._word_prefixes)
            for word in _WORD.findall(folded)
        )

    def _meaning(self, word: str) -> str:
        if word in self._exact:
            return self._exact[word]
        for prefix, meaning in self._prefixes:
            if word.startswith(prefix):
                return meaning
        return word
