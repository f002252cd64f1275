"""Incident report export: Markdown fit to paste into a ticket, in English or Brazilian Portuguese.

Shaped like an engineer's diagnosis: root cause with its evidence, impact (jobs, listings and assets
affected by the same failure group, since when), and the improvements to TOQ's pipeline that would
prevent it (reference §5 names them per failure mode).
"""

from __future__ import annotations

from django.db.models import Count, Min

from diagnosis.groups import jobs_in_group
from diagnosis.models import Diagnosis, Finding, Role
from jobs.models import Job, MediaAsset

# Improvements to TOQ's pipeline, per failure mode (toq-media-pipeline.md §5 and §8).
IMPROVEMENTS: dict[str, tuple[str, str]] = {
    "FM-12": (
        "Ship ffmpeg with the function (layer attached by Terraform and by scripts/deploy_lambdas.sh, "
        "FFMPEG_PATH set), and fail the deploy when the binary is missing; smoke-test a video after deploys.",
        "Entregar o ffmpeg junto com a função (layer anexada pelo Terraform e pelo scripts/deploy_lambdas.sh, "
        "FFMPEG_PATH definido) e falhar o deploy quando o binário não existir; testar um vídeo após cada deploy.",
    ),
    "FM-14": (
        "Never fail ConsolidateResults on branch errors: return the body with PARTIAL_SUCCESS and per-asset "
        "errors (as commit c03eeda0 does), so one asset's failure does not fail the whole job.",
        "Nunca falhar o ConsolidateResults por erros de ramo: devolver o corpo com PARTIAL_SUCCESS e os erros "
        "por ativo (como faz o commit c03eeda0), para que a falha de um ativo não derrube o job inteiro.",
    ),
    "FM-28": (
        "Make the FAILED-callback fail-safe touch only the job's own assets (a job↔asset table), and record "
        "an error code on each asset it fails.",
        "Fazer o fail-safe do callback FAILED alterar apenas os ativos do próprio job (tabela job↔ativo) e "
        "gravar um código de erro em cada ativo que ele falhar.",
    ),
    "FM-39": (
        "Deploy Lambdas, layers and state machine from one pipeline (Terraform), and alert on configuration "
        "drift (Layers, Environment, Runtime) against the repository.",
        "Implantar Lambdas, layers e máquina de estados por um único pipeline (Terraform) e alertar sobre "
        "divergência de configuração (Layers, Environment, Runtime) em relação ao repositório.",
    ),
    "FM-29": (
        "Let the reconciler also fail processing jobs PENDING past a timeout, and make every terminal path "
        "of the state machine deliver a callback.",
        "Permitir que o reconciliador também falhe jobs de processamento PENDING além de um prazo e garantir "
        "que todo caminho terminal da máquina de estados entregue um callback.",
    ),
    "FM-17": (
        "Wait for MediaConvert (.sync integration or an EventBridge rule) and report its failures in the callback.",
        "Aguardar o MediaConvert (integração .sync ou regra do EventBridge) e reportar suas falhas no callback.",
    ),
    "FM-25": (
        "Map FINALIZATION_FAILED (and the Step Functions Error/Cause object) to a FAILED job with its error.",
        "Mapear FINALIZATION_FAILED (e o objeto Error/Cause do Step Functions) para um job FAILED com o erro.",
    ),
}

_L = {
    "en": {
        "title": "Incident report — TOQ media job {job}",
        "status": "Status in TOQ",
        "listing": "Listing",
        "root": "Root cause",
        "contributing": "Contributing factors",
        "consequence": "What support sees",
        "evidence": "Evidence",
        "missing": "Missing evidence",
        "confidence": "confidence",
        "impact": "Impact",
        "impact_line": "{jobs} job(s) on {listings} listing(s) share this failure (same signature), first seen {first}, last seen {last}.",
        "assets_line": "{assets} asset(s) of the affected listings are FAILED in TOQ.",
        "improve": "Improvements to TOQ's pipeline",
        "action": "Suggested action",
        "none": "No failure found: the job looks healthy.",
        "never": "unknown",
    },
    "pt-br": {
        "title": "Relatório de incidente — tarefa de mídia {job} do TOQ",
        "status": "Status no TOQ",
        "listing": "Anúncio",
        "root": "Causa raiz",
        "contributing": "Fatores que contribuíram",
        "consequence": "O que o suporte vê",
        "evidence": "Evidências",
        "missing": "Evidências ausentes",
        "confidence": "confiança",
        "impact": "Impacto",
        "impact_line": "{jobs} tarefa(s) em {listings} anúncio(s) compartilham esta falha (mesma assinatura); vista pela primeira vez em {first}, pela última em {last}.",
        "assets_line": "{assets} ativo(s) dos anúncios afetados estão FAILED no TOQ.",
        "improve": "Melhorias no pipeline do TOQ",
        "action": "Ação sugerida",
        "none": "Nenhuma falha encontrada: a tarefa parece saudável.",
        "never": "desconhecido",
    },
}


def _md(text: str) -> str:
    """Neutralise Markdown/HTML in TOQ/AWS text pasted into a ticket (it is attacker-controlled)."""
    return text.replace("\\", "\\\\").replace("`", "'").replace("<", "&lt;").replace(">", "&gt;").replace("\n", " ")


def _finding(f: Finding, lang: str, labels: dict[str, str]) -> list[str]:
    out = [f"**{f.failure_mode} `{f.cause}`** — {_md(f.title(lang))} ({labels['confidence']} {f.confidence:.0%})", ""]
    out.append(_md(f.summary(lang)))
    if f.action(lang):
        out += ["", f"*{labels['action']}:* {_md(f.action(lang))}"]
    if f.evidence:
        out += ["", f"{labels['evidence']}:"]
        for item in f.evidence[:10]:
            where = " ".join(str(item.get(k, "")) for k in ("kind", "source", "id") if item.get(k))
            out.append(f"- `{_md(where)}`: {_md(str(item.get('excerpt', '')))[:300]}")
    if f.missing_evidence:
        key = "pt_br" if lang == "pt-br" else "en"
        out += ["", f"{labels['missing']}: " + "; ".join(_md(str(m.get(key, ""))) for m in f.missing_evidence)]
    return out + [""]


def incident_report_markdown(*, job: Job, lang: str = "en") -> str:
    labels = _L["pt-br" if lang.lower() in ("pt-br", "pt_br", "pt") else "en"]
    lang = "pt-br" if labels is _L["pt-br"] else "en"
    lines = [f"# {labels['title'].format(job=job.toq_id)}", ""]
    lines.append(f"- {labels['status']}: `{_md(job.status)}` ({job.kind})")
    lines.append(f"- {labels['listing']}: {job.listing_identity_id}")
    if job.external_id:
        lines.append(f"- Execution: `{_md(job.external_id)}`")
    lines.append("")
    diagnosis = Diagnosis.objects.filter(job=job).first()
    findings = list(diagnosis.findings.all()) if diagnosis else []
    if not findings:
        return "\n".join([*lines, labels["none"], ""])
    for role, title in ((Role.ORIGIN, "root"), (Role.CONTRIBUTING, "contributing"), (Role.CONSEQUENCE, "consequence")):
        subset = [f for f in findings if f.role == role]
        if subset:
            lines += [f"## {labels[title]}", ""]
            for f in subset:
                lines += _finding(f, lang, labels)
    origin = next((f for f in findings if f.role == Role.ORIGIN and f.signature), None)
    if origin is not None:
        group = jobs_in_group(signature=origin.signature)
        agg = group.aggregate(  # type: ignore[misc]  # seen_at is annotated by jobs_in_group
            jobs=Count("diagnosis__job", distinct=True),
            listings=Count("diagnosis__job__listing_identity_id", distinct=True),
            first=Min("seen_at"),
        )
        last = group.order_by("-seen_at").values_list("seen_at", flat=True).first()  # type: ignore[misc]
        listing_ids = set(group.values_list("diagnosis__job__listing_identity_id", flat=True))
        failed_assets = MediaAsset.objects.filter(
            listing_identity_id__in=listing_ids, status="FAILED", superseded_at__isnull=True
        ).count()
        lines += [f"## {labels['impact']}", ""]
        lines.append(
            labels["impact_line"].format(
                jobs=agg["jobs"],
                listings=agg["listings"],
                first=agg["first"].isoformat() if agg["first"] else labels["never"],
                last=last.isoformat() if last else labels["never"],
            )
        )
        lines += [labels["assets_line"].format(assets=failed_assets), ""]
    improvements = []
    for f in findings:
        text = IMPROVEMENTS.get(f.failure_mode)
        if text and text not in improvements:
            improvements.append(text)
    if improvements:
        lines += [f"## {labels['improve']}", ""]
        lines += [f"- {t[1] if lang == 'pt-br' else t[0]}" for t in improvements]
        lines.append("")
    return "\n".join(lines)
