"""Every label of the review screen, in Dutch (the default) and English: one catalogue.

Templates call ``t("key")``; a key missing from a language falls back to Dutch, and a key
missing from the catalogue is shown as the key itself (a test checks every key in the templates
exists in both languages).
"""

from __future__ import annotations

LANGUAGES = ("nl", "en")
DEFAULT = "nl"

CATALOGUE: dict[str, dict[str, str]] = {
    # --- frame
    "app": {"nl": "coupler — koppelen van statushouders", "en": "coupler — coupling statushouders"},
    "nav.period": {"nl": "Periode", "en": "Period"},
    "nav.omkoppeling": {"nl": "Omkoppeling", "en": "Omkoppeling"},
    "nav.kansrijk": {"nl": "Kansrijke Koppeling", "en": "Kansrijke Koppeling"},
    "nav.audit": {"nl": "Audit", "en": "Audit"},
    "nav.logout": {"nl": "Afmelden", "en": "Sign out"},
    "nav.language": {"nl": "English", "en": "Nederlands"},
    "signed_in_as": {"nl": "Aangemeld als", "en": "Signed in as"},
    "role": {"nl": "rol", "en": "role"},
    # --- login
    "login.title": {"nl": "Aanmelden", "en": "Sign in"},
    "login.name": {"nl": "Gebruikersnaam", "en": "User name"},
    "login.password": {"nl": "Wachtwoord", "en": "Password"},
    "login.submit": {"nl": "Aanmelden", "en": "Sign in"},
    "login.failed": {
        "nl": "Naam of wachtwoord onjuist.",
        "en": "Wrong name or password.",
    },
    "login.throttled": {
        "nl": "Te veel mislukte pogingen; probeer het over {seconds} seconden opnieuw.",
        "en": "Too many failed attempts; try again in {seconds} seconds.",
    },
    "login.expired": {
        "nl": "Uw sessie is verlopen; meld u opnieuw aan.",
        "en": "Your session expired; please sign in again.",
    },
    # --- errors
    "error.title": {"nl": "Dat lukte niet", "en": "That did not work"},
    "error.forbidden": {
        "nl": "U hebt geen toegang tot deze gegevens of deze handeling.",
        "en": "You have no access to this data or action.",
    },
    "error.csrf": {
        "nl": "Het formulier is verlopen of ongeldig; laad de pagina opnieuw.",
        "en": "The form expired or is invalid; reload the page.",
    },
    "error.notfound": {"nl": "Niet gevonden.", "en": "Not found."},
    "back": {"nl": "Terug", "en": "Back"},
    # --- period
    "period.title": {"nl": "Periode", "en": "Period"},
    "period.none": {
        "nl": "Er is nog geen periode geopend.",
        "en": "No period has been opened yet.",
    },
    "period.status": {"nl": "status", "en": "status"},
    "period.total": {"nl": "landelijke taakstelling", "en": "national total"},
    "period.by_province": {"nl": "Per provincie", "en": "By province"},
    "period.by_region": {"nl": "Per arbeidsmarktregio", "en": "By labour-market region"},
    "period.by_municipality": {"nl": "Per gemeente", "en": "By municipality"},
    "period.batches": {"nl": "Batches", "en": "Batches"},
    "period.waiting": {"nl": "Wachtende verzoeken", "en": "Waiting items"},
    "col.municipality": {"nl": "gemeente", "en": "municipality"},
    "col.province": {"nl": "provincie", "en": "province"},
    "col.region": {"nl": "arbeidsmarktregio", "en": "labour-market region"},
    "col.target": {"nl": "taakstelling", "en": "quota"},
    "col.coupled": {"nl": "gekoppeld", "en": "coupled"},
    "col.reserved": {"nl": "gereserveerd", "en": "reserved"},
    "col.remaining": {"nl": "resterend", "en": "remaining"},
    "col.batch": {"nl": "batch", "en": "batch"},
    "col.status": {"nl": "status", "en": "status"},
    "col.month": {"nl": "maand", "en": "month"},
    "col.households": {"nl": "huishoudens", "en": "households"},
    "col.persons": {"nl": "personen", "en": "persons"},
    "count.person": {"nl": "persoon", "en": "person"},
    "col.created": {"nl": "voorgesteld", "en": "proposed"},
    "col.household": {"nl": "huishouden", "en": "household"},
    "col.azc": {"nl": "azc", "en": "azc"},
    "col.criteria": {"nl": "harde criteria", "en": "hard criteria"},
    "col.score": {"nl": "score", "en": "score"},
    "col.alternative": {"nl": "beste alternatief", "en": "best alternative"},
    "col.why_not": {"nl": "waarom niet gekozen", "en": "why not chosen"},
    "col.reason": {"nl": "reden", "en": "reason"},
    "col.when": {"nl": "wanneer", "en": "when"},
    "col.who": {"nl": "wie", "en": "who"},
    "col.command": {"nl": "opdracht", "en": "command"},
    "col.action": {"nl": "handeling", "en": "action"},
    "col.subject": {"nl": "onderwerp", "en": "subject"},
    "col.detail": {"nl": "details", "en": "detail"},
    "col.rules": {"nl": "regels", "en": "rules"},
    "col.decision": {"nl": "besluit", "en": "decision"},
    "col.review": {"nl": "beoordeling", "en": "review"},
    "col.probability": {"nl": "kans op vergunning", "en": "permit probability"},
    "col.from": {"nl": "van", "en": "from"},
    "col.to": {"nl": "naar", "en": "to"},
    "col.distance": {"nl": "afstand", "en": "distance"},
    "col.kind": {"nl": "criterium", "en": "criterion"},
    "col.state": {"nl": "oordeel", "en": "verdict"},
    "col.part": {"nl": "onderdeel", "en": "part"},
    # --- batch
    "batch.title": {"nl": "Batch", "en": "Batch"},
    "batch.filters": {"nl": "Filters", "en": "Filters"},
    "batch.only_broken": {"nl": "alleen gebroken criteria", "en": "broken criteria only"},
    "batch.only_conflicts": {"nl": "alleen conflicten", "en": "conflicts only"},
    "batch.only_overridden": {"nl": "alleen gewijzigd", "en": "overridden only"},
    "batch.size": {"nl": "huishoudgrootte", "en": "household size"},
    "batch.apply": {"nl": "Toepassen", "en": "Apply"},
    "batch.clear": {"nl": "Wissen", "en": "Clear"},
    "batch.shown": {
        "nl": "{total} koppelingen (pagina {page} van {pages})",
        "en": "{total} couplings (page {page} of {pages})",
    },
    "batch.counts": {
        "nl": "{broken} breken een hard criterium, {conflicts} conflicten, {overridden} gewijzigd",
        "en": "{broken} break a hard criterion, {conflicts} conflicts, {overridden} overridden",
    },
    "batch.previous": {"nl": "vorige", "en": "previous"},
    "batch.next": {"nl": "volgende", "en": "next"},
    "batch.sort": {"nl": "sorteer", "en": "sort"},
    "batch.approve": {"nl": "Batch goedkeuren", "en": "Approve batch"},
    "batch.approve_help": {
        "nl": "Een reden is alleen nodig voor koppelingen die een hard criterium breken.",
        "en": "A reason is needed only for couplings that break a hard criterion.",
    },
    "batch.approved": {"nl": "De batch is goedgekeurd.", "en": "The batch was approved."},
    "batch.withdraw": {"nl": "Voorstel intrekken", "en": "Withdraw proposal"},
    "batch.withdrawn": {"nl": "Het voorstel is ingetrokken.", "en": "The proposal was withdrawn."},
    "batch.export": {
        "nl": "Download beoordelingsbestand (xlsx)",
        "en": "Download review workbook (xlsx)",
    },
    "batch.not_proposed": {
        "nl": "Deze batch is {status}; er valt niets meer te beslissen.",
        "en": "This batch is {status}; there is nothing left to decide.",
    },
    "batch.pending": {
        "nl": "{n} wijzigingen wachten op goedkeuring",
        "en": "{n} overrides await approval",
    },
    "batch.uncoupled": {"nl": "niet gekoppeld", "en": "not coupled"},
    "batch.open": {"nl": "bekijk", "en": "open"},
    # --- verdicts
    "state.met": {"nl": "voldaan", "en": "met"},
    "state.broken": {"nl": "gebroken", "en": "broken"},
    "state.yielded": {"nl": "geweken (conflict)", "en": "yielded (conflict)"},
    "state.soft": {"nl": "zacht", "en": "soft"},
    "why.breaks": {"nl": "breekt een hard criterium", "en": "breaks a hard criterion"},
    "why.no_room": {"nl": "geen ruimte", "en": "no room"},
    "why.lower_score": {"nl": "lagere score", "en": "lower score"},
    "why.fill_balance": {"nl": "evenwichtige vulling", "en": "fill balance"},
    "why.swap": {"nl": "alleen met een ruil", "en": "only with a swap"},
    "kind.work": {"nl": "werk", "en": "work"},
    "kind.family": {"nl": "familie", "en": "family"},
    "kind.study": {"nl": "studie", "en": "study"},
    "kind.medical": {"nl": "medisch", "en": "medical"},
    "part.labour": {"nl": "arbeidsmarkt", "en": "labour market"},
    "part.network": {"nl": "netwerk", "en": "network"},
    "part.ambition": {"nl": "ambitie", "en": "ambition"},
    "part.azc": {"nl": "nabij azc", "en": "near the azc"},
    "part.participation": {"nl": "participatiekans", "en": "participation chance"},
    "part.work_soft": {"nl": "werk (zacht)", "en": "work (soft)"},
    "status.proposed": {"nl": "voorgesteld", "en": "proposed"},
    "status.approved": {"nl": "goedgekeurd", "en": "approved"},
    "status.expired": {"nl": "vervallen", "en": "expired"},
    "status.withdrawn": {"nl": "ingetrokken", "en": "withdrawn"},
    "status.uncoupled": {"nl": "niet gekoppeld", "en": "uncoupled"},
    "status.open": {"nl": "open", "en": "open"},
    "status.closed": {"nl": "gesloten", "en": "closed"},
    # --- household
    "household.title": {"nl": "Huishouden", "en": "Household"},
    "household.coupled_to": {"nl": "Gekoppeld aan", "en": "Coupled to"},
    "household.proposed": {"nl": "voorstel", "en": "proposal"},
    "household.override_pending": {
        "nl": "Gewijzigd naar {name} door {by} (wacht op goedkeuring van de batch)",
        "en": "Overridden to {name} by {by} (awaits the batch's approval)",
    },
    "household.criteria": {"nl": "Criteria", "en": "Criteria"},
    "household.no_criteria": {"nl": "Geen harde criteria.", "en": "No hard criteria."},
    "household.score_parts": {"nl": "Score per onderdeel", "en": "Score by part"},
    "household.side_by_side": {
        "nl": "De gekozen gemeente en de drie beste alternatieven",
        "en": "The chosen municipality and the three best alternatives",
    },
    "household.chosen": {"nl": "gekozen", "en": "chosen"},
    "household.room": {"nl": "ruimte", "en": "room"},
    "household.map": {"nl": "Kaart (cirkels: {radius} km)", "en": "Map (circles: {radius} km)"},
    "household.override": {"nl": "Wijzigen", "en": "Override"},
    "household.new_municipality": {"nl": "Nieuwe gemeente", "en": "New municipality"},
    "household.override_submit": {"nl": "Wijziging vastleggen", "en": "Record override"},
    "household.override_saved": {
        "nl": "De wijziging is vastgelegd; ze gaat in bij goedkeuring van de batch.",
        "en": "The override was recorded; it takes effect when the batch is approved.",
    },
    "household.legend_chosen": {"nl": "gekozen gemeente", "en": "chosen municipality"},
    "household.legend_alternative": {"nl": "alternatief", "en": "alternative"},
    "household.legend_criterion": {
        "nl": "criterium met 50 km-cirkel",
        "en": "criterion with 50 km circle",
    },
    "household.legend_azc": {"nl": "azc", "en": "azc"},
    # --- queues
    "omkoppeling.title": {"nl": "Omkoppelingsverzoeken", "en": "Omkoppeling requests"},
    "kansrijk.title": {"nl": "Kansrijke Koppelingen", "en": "Kansrijke Koppelingen"},
    "queue.empty": {"nl": "Geen verzoeken.", "en": "No items."},
    "queue.approve": {"nl": "Akkoord", "en": "Approve"},
    "queue.reject": {"nl": "Afwijzen", "en": "Reject"},
    "queue.decided": {"nl": "Het besluit is vastgelegd.", "en": "The decision was recorded."},
    "omkoppeling.hint": {
        "nl": "Akkoord verplaatst de koppeling en de taakstelling direct. Een reden is nodig bij "
        "afwijzen en bij een verplaatsing die een ander hard criterium breekt.",
        "en": "Approve moves the coupling and the quota at once. A reason is needed to reject, "
        "and to approve a move that breaks another hard criterion.",
    },
    "omkoppeling.reason_when": {
        "nl": "reden (verplicht bij afwijzen)",
        "en": "reason (required to reject)",
    },
    "omkoppeling.breaks": {"nl": "breekt", "en": "breaks"},
    "omkoppeling.done_recoupled": {
        "nl": "Omgekoppeld: de koppeling en de taakstelling zijn verplaatst.",
        "en": "Recoupled: the coupling and the quota were moved.",
    },
    "omkoppeling.done_declined": {
        "nl": "Het voorstel is afgewezen; de koppeling blijft staan.",
        "en": "The proposal was rejected; the coupling stays.",
    },
    "omk.proposed": {"nl": "voorgesteld", "en": "proposed"},
    "omk.rejected": {"nl": "voldoet niet aan de regels", "en": "fails the rules"},
    "omk.recoupled": {"nl": "omgekoppeld", "en": "recoupled"},
    "omk.declined": {"nl": "afgewezen", "en": "rejected"},
    "kansrijk.hint": {
        "nl": "Leg het besluit van de IND vast: verleend bevestigt de koppeling (of plant het "
        "huishouden opnieuw als de gemeente geen ruimte meer heeft of een criterium breekt), "
        "geweigerd geeft de reservering vrij.",
        "en": "Record the IND's decision: granted confirms the coupling (or re-plans the household "
        "when the municipality has no room left or a criterion breaks), refused releases the "
        "reservation.",
    },
    "kansrijk.granted": {"nl": "Vergunning verleend", "en": "Permit granted"},
    "kansrijk.refused": {"nl": "Vergunning geweigerd", "en": "Permit refused"},
    "kansrijk.done_confirmed": {
        "nl": "Vergunning verleend: de koppeling is bevestigd en volledig aangerekend.",
        "en": "Permit granted: the coupling is confirmed and charged in full.",
    },
    "kansrijk.done_replan": {
        "nl": "Vergunning verleend, maar de koppeling past niet meer: het huishouden is opnieuw "
        "gepland in een voorgestelde batch.",
        "en": "Permit granted, but the coupling no longer fits: the household was re-planned in "
        "a proposed batch.",
    },
    "kansrijk.done_refused": {
        "nl": "Vergunning geweigerd: de reservering is vrijgegeven.",
        "en": "Permit refused: the reservation was released.",
    },
    "kstatus.active": {"nl": "wacht op vergunning", "en": "awaiting permit"},
    "kstatus.confirmed": {"nl": "bevestigd", "en": "confirmed"},
    "kstatus.replanned": {"nl": "opnieuw gepland", "en": "re-planned"},
    "kstatus.refused": {"nl": "geweigerd", "en": "refused"},
    "rule.pass": {"nl": "voldoet", "en": "pass"},
    "rule.fail": {"nl": "voldoet niet", "en": "fail"},
    # --- maps on the Periode page
    "map.fill": {"nl": "Vulgraad per gemeente", "en": "Fill share per municipality"},
    "map.fill_scale": {
        "nl": "vulgraad (gekoppeld / opgave)",
        "en": "fill share (coupled / target)",
    },
    "map.fill_tip": {
        "nl": "{name}: {coupled} van {target} gekoppeld",
        "en": "{name}: {coupled} of {target} coupled",
    },
    "map.realised": {"nl": "Gerealiseerd per gemeente", "en": "Realised per municipality"},
    "map.realised_scale": {
        "nl": "gerealiseerd (gehuisvest / opgave)",
        "en": "realised (housed / target)",
    },
    "map.realised_tip": {
        "nl": "{name}: {housed} van {target} gehuisvest",
        "en": "{name}: {housed} of {target} housed",
    },
    "map.source": {
        "nl": "Grenzen: Bron: CBS, Kadaster (PDOK), CC BY 4.0. Grijs: geen gegevens.",
        "en": "Borders: Bron: CBS, Kadaster (PDOK), CC BY 4.0. Grey: no data.",
    },
    # --- municipality view (housing follow-up)
    "housing.title": {"nl": "Huisvesting — {name}", "en": "Housing — {name}"},
    "housing.saved": {"nl": "De gebeurtenis is vastgelegd.", "en": "The event was recorded."},
    "housing.realised": {
        "nl": "Gerealiseerde taakstelling {period}",
        "en": "Realised taakstelling {period}",
    },
    "housing.quota": {"nl": "taakstelling", "en": "quota"},
    "housing.backlog": {"nl": "achterstand", "en": "backlog"},
    "housing.target": {"nl": "opgave", "en": "target"},
    "housing.housed": {"nl": "gehuisvest", "en": "housed"},
    "housing.carry": {"nl": "over naar volgende periode", "en": "carried to next period"},
    "housing.overdue": {
        "nl": "Te laat: nog geen woning aangeboden",
        "en": "Overdue: no dwelling offered yet",
    },
    "housing.overdue_none": {"nl": "Niets te laat.", "en": "Nothing overdue."},
    "housing.couplings": {"nl": "Gekoppelde huishoudens", "en": "Coupled households"},
    "housing.no_couplings": {
        "nl": "Nog geen goedgekeurde koppelingen.",
        "en": "No approved couplings yet.",
    },
    "housing.composition": {"nl": "volwassenen / kinderen", "en": "adults / children"},
    "housing.coupled_on": {"nl": "gekoppeld op", "en": "coupled on"},
    "housing.days_waiting": {"nl": "dagen wachtend", "en": "days waiting"},
    "housing.expected": {"nl": "verwachte komst", "en": "expected arrival"},
    "housing.state": {"nl": "stand", "en": "state"},
    "housing.events": {"nl": "gebeurtenissen", "en": "events"},
    "housing.record": {"nl": "vastleggen", "en": "record"},
    "housing.event": {"nl": "gebeurtenis", "en": "event"},
    "housing.date": {"nl": "datum", "en": "date"},
    "housing.reason": {
        "nl": "reden (verplicht bij weigering)",
        "en": "reason (required for a refusal)",
    },
    "housing.submit": {"nl": "Vastleggen", "en": "Record"},
    "housing.household": {"nl": "Huisvesting", "en": "Housing"},
    "housing.all": {"nl": "alle koppelingen", "en": "all couplings"},
    "event.offered": {"nl": "woning aangeboden", "en": "dwelling offered"},
    "event.housed": {"nl": "gehuisvest", "en": "housed"},
    "event.refused": {"nl": "geweigerd", "en": "refused"},
    "event.inburgering": {"nl": "inburgering gestart", "en": "inburgering started"},
    "hstate.coupled": {"nl": "gekoppeld", "en": "coupled"},
    "hstate.offered": {"nl": "woning aangeboden", "en": "dwelling offered"},
    "hstate.housed": {"nl": "gehuisvest", "en": "housed"},
    "hstate.refused": {"nl": "geweigerd", "en": "refused"},
    # --- audit
    "audit.title": {"nl": "Audit", "en": "Audit"},
    "audit.export": {"nl": "Exporteer CSV", "en": "Export CSV"},
    "audit.rows": {"nl": "{n} regels", "en": "{n} rows"},
    "yes": {"nl": "ja", "en": "yes"},
    "no": {"nl": "nee", "en": "no"},
    "any": {"nl": "alle", "en": "any"},
}


def translate(key: str, lang: str, **values: object) -> str:
    """The label ``key`` in ``lang`` (falling back to Dutch, then to the key), formatted."""
    entry = CATALOGUE.get(key)
    if entry is None:
        text = key
    else:
        text = entry.get(lang) or entry[DEFAULT]
    return text.format(**values) if values else text


__all__ = ["CATALOGUE", "DEFAULT", "LANGUAGES", "translate"]
