"""Languages: the pt-BR catalog is complete and compiled, and the switch in the top bar works."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from jobs.roles import SUPPORT
from tests.jobs.factories import make_job37, make_user

REPO = Path(__file__).resolve().parent.parent
PO = REPO / "locale" / "pt_BR" / "LC_MESSAGES" / "django.po"
MO = PO.with_suffix(".mo")


def _entries() -> list[tuple[list[str], str, list[str]]]:
    """(flags/comments, msgid, msgstrs) of every entry but the header."""
    out = []
    for block in PO.read_text(encoding="utf-8").split("\n\n"):
        comments, parts, cur = [], {}, None
        for line in block.splitlines():
            m = re.match(r"^(msgid|msgid_plural|msgstr(?:\[\d\])?) (\".*\")$", line)
            if m:
                cur = m.group(1)
                parts[cur] = ast.literal_eval(m.group(2))
            elif line.startswith('"') and cur:
                parts[cur] += ast.literal_eval(line)
            elif line.startswith("#"):
                comments.append(line)
        if parts.get("msgid"):
            out.append((comments, parts["msgid"], [v for k, v in parts.items() if k.startswith("msgstr")]))
    return out


def test_catalog_has_no_empty_or_fuzzy_translation():
    entries = _entries()
    assert len(entries) > 100
    empty = [msgid for _, msgid, strs in entries if not strs or any(s == "" for s in strs)]
    fuzzy = [msgid for comments, msgid, _ in entries if any(c.startswith("#,") and "fuzzy" in c for c in comments)]
    obsolete = [msgid for comments, msgid, _ in entries if any(c.startswith("#~") for c in comments)]
    assert empty == []
    assert fuzzy == []
    assert obsolete == []


def test_placeholders_survive_translation():
    for _, msgid, strs in _entries():
        wanted = sorted(re.findall(r"%\(\w+\)[sd]", msgid))
        for s in strs:
            assert sorted(re.findall(r"%\(\w+\)[sd]", s)) == wanted, msgid


def test_every_template_string_is_in_the_catalog():
    msgids = {msgid for _, msgid, _ in _entries()}
    missing = []
    for template in (REPO / "templates").rglob("*.html"):
        for text in re.findall(r'{% translate "([^"]+)" %}', template.read_text()):
            if text not in msgids:
                missing.append(f"{template.name}: {text}")
    assert missing == [], "run makemessages and translate: " + ", ".join(missing)


def test_compiled_catalog_is_up_to_date(tmp_path):
    msgfmt = shutil.which("msgfmt")
    assert msgfmt, "gettext's msgfmt is needed to check the compiled catalog"
    fresh = tmp_path / "django.mo"
    subprocess.run([msgfmt, "--check-format", "-o", str(fresh), str(PO)], check=True)
    assert MO.is_file(), "locale/pt_BR/LC_MESSAGES/django.mo missing: run compilemessages"
    assert MO.read_bytes() == fresh.read_bytes(), "django.mo is stale: run compilemessages --ignore=.venv"


@pytest.mark.django_db
def test_language_switch_renders_pages_in_portuguese(client):
    make_job37()
    client.force_login(make_user("sam", SUPPORT))
    english = client.get("/").content.decode()
    assert "<h1>Jobs</h1>" in english and 'lang="en"' in english

    response = client.post("/i18n/setlang/", {"language": "pt-br", "next": "/jobs/37/"})
    assert response.status_code == 302 and response["Location"] == "/jobs/37/"

    listing = client.get("/").content.decode()
    assert 'lang="pt-br"' in listing
    assert "<h1>Tarefas</h1>" in listing
    assert "Aplicar filtros" in listing and "Exportar CSV (conjunto filtrado)" in listing
    job = client.get("/jobs/37/").content.decode()
    assert "Tarefa 37" in job and "Notas" in job and "Histórico observado" in job
    assert "Diagnóstico" in job
    # the evidence panels load after the page; without evidence they say so
    panel = client.get("/jobs/37/g1/diagnosis/", headers={"HX-Request": "true"}).content.decode()
    assert "As evidências da AWS ainda não foram coletadas" in panel
    assert "(há " in job  # ages, with Django's own pt-BR timesince
    assert '<option value="pt-br" selected>' in job
