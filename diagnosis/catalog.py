"""Support-facing wording of every finding, in English and Brazilian Portuguese (both are stored).

FM_TEXT: per failure mode, a title, a summary template and a default action. CAUSE_TEXT: per
(failure mode, cause), the sentence naming the specific cause and, when it differs, the action.
Templates take the candidate's params ({keys}, {message}, {error}, {count}, ...); a missing param
renders as "?", never raises.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Text:
    en: str
    pt_br: str


@dataclass(frozen=True)
class ModeText:
    title: Text
    summary: Text
    action: Text


def T(en: str, pt_br: str) -> Text:  # noqa: N802 - reads as a table below
    return Text(en, pt_br)


FM_TEXT: dict[str, ModeText] = {
    "FM-05": ModeText(
        T("Trigger message could not be read", "Mensagem de disparo ilegível"),
        T(
            "The validate Lambda could not parse the SQS message of this job and dropped it, so no execution started ({error}).",
            "A Lambda de validação não conseguiu interpretar a mensagem SQS deste job e a descartou; nenhuma execução foi iniciada ({error}).",
        ),
        T(
            "Fix the message producer, then ask the user to call /uploads/process again (new job).",
            "Corrija quem produz a mensagem e peça ao usuário para chamar /uploads/process de novo (novo job).",
        ),
    ),
    "FM-06": ModeText(
        T("Step Functions execution could not be started", "Não foi possível iniciar a execução no Step Functions"),
        T(
            "The validate Lambda failed to start the processing state machine ({error}); SQS redelivers 5 times, then the message sits in the dead-letter queue.",
            "A Lambda de validação falhou ao iniciar a máquina de estados de processamento ({error}); o SQS reentrega 5 vezes e depois a mensagem fica na fila de mensagens mortas (DLQ).",
        ),
        T(
            "Check the validate Lambda's IAM permission states:StartExecution and STATE_MACHINE_ARN, then re-drive the DLQ message.",
            "Verifique a permissão IAM states:StartExecution e a variável STATE_MACHINE_ARN da Lambda de validação e reenvie a mensagem da DLQ.",
        ),
    ),
    "FM-08": ModeText(
        T("Several executions for one job", "Várias execuções para um mesmo job"),
        T(
            "{count} executions carry this job id; TOQ keeps the first ARN but the status of the last callback.",
            "{count} execuções têm o id deste job; o TOQ guarda o primeiro ARN, mas o status do último callback.",
        ),
        T(
            "Compare the executions; the job row may describe a different run than its external_id.",
            "Compare as execuções; a linha do job pode descrever uma execução diferente da apontada em external_id.",
        ),
    ),
    "FM-09": ModeText(
        T("Validation step failed (VALIDATION_FAILED)", "Etapa de validação falhou (VALIDATION_FAILED)"),
        T(
            "The validate Lambda itself failed ({error}) after its retries; TOQ received VALIDATION_FAILED without per-asset results.",
            "A própria Lambda de validação falhou ({error}) após as novas tentativas; o TOQ recebeu VALIDATION_FAILED sem resultado por arquivo.",
        ),
        T(
            "Check the validate Lambda (logs, timeout, permissions), then reprocess the listing.",
            "Verifique a Lambda de validação (logs, timeout, permissões) e reprocesse o anúncio.",
        ),
    ),
    "FM-10": ModeText(
        T("Uploaded file not readable at validation", "Arquivo enviado ilegível na validação"),
        T(
            "The raw object of {keys} could not be read when the job ran: {message}",
            "O objeto original de {keys} não pôde ser lido quando o job rodou: {message}",
        ),
        T(
            "Ask the photographer to upload the file again (new upload URL), then process.",
            "Peça ao fotógrafo para enviar o arquivo de novo (nova URL de upload) e processar.",
        ),
    ),
    "FM-11": ModeText(
        T("Image thumbnails failed", "Falha ao gerar miniaturas da imagem"),
        T(
            "The image-thumbnail branch reported THUMBNAIL_PROCESSING_FAILED for {keys}: {message}",
            "O ramo de miniaturas de imagem reportou THUMBNAIL_PROCESSING_FAILED para {keys}: {message}",
        ),
        T(
            "Check the file format and the thumbnails Lambda log, then reprocess.",
            "Verifique o formato do arquivo e o log da Lambda de miniaturas e reprocesse.",
        ),
    ),
    "FM-12": ModeText(
        T("Video thumbnail failed", "Falha ao gerar a miniatura do vídeo"),
        T(
            "The video thumbnail of {keys} was not produced: {message}",
            "A miniatura do vídeo de {keys} não foi gerada: {message}",
        ),
        T(
            "Check the video_thumbnails Lambda, then reprocess the listing.",
            "Verifique a Lambda video_thumbnails e reprocesse o anúncio.",
        ),
    ),
    "FM-13": ModeText(
        T("A processing Lambda failed", "Uma Lambda de processamento falhou"),
        T(
            "A derivative branch failed as a task ({error}) after its retries; the whole job failed without per-asset results.",
            "Um ramo de derivados falhou como tarefa ({error}) após as novas tentativas; o job inteiro falhou sem resultado por arquivo.",
        ),
        T(
            "Check the branch Lambda's timeout, memory and deployment, then reprocess.",
            "Verifique timeout, memória e implantação da Lambda do ramo e reprocesse.",
        ),
    ),
    "FM-14": ModeText(
        T("Consolidation step failed", "Etapa de consolidação falhou"),
        T("ConsolidateResults failed ({error}).", "ConsolidateResults falhou ({error})."),
        T("Check the consolidate Lambda, then reprocess.", "Verifique a Lambda de consolidação e reprocesse."),
    ),
    "FM-15": ModeText(
        T("MediaConvert rejected the transcode", "O MediaConvert rejeitou a conversão"),
        T(
            "CreateJob on MediaConvert failed ({error}); the parallel step failed and TOQ got PROCESSING_FAILED.",
            "O CreateJob do MediaConvert falhou ({error}); a etapa paralela falhou e o TOQ recebeu PROCESSING_FAILED.",
        ),
        T(
            "Check the MediaConvert role (iam:PassRole) and the job settings, then reprocess.",
            "Verifique o papel do MediaConvert (iam:PassRole) e as configurações do job e reprocesse.",
        ),
    ),
    "FM-16": ModeText(
        T("Execution failed without any callback (States.Runtime)", "Execução falhou sem callback (States.Runtime)"),
        T(
            "A JSONPath of the state machine did not resolve ({error}); this failure cannot be caught, so TOQ never heard of it.",
            "Um JSONPath da máquina de estados não foi resolvido ({error}); essa falha não pode ser capturada, então o TOQ nunca soube dela.",
        ),
        T(
            "Fix the input (video key without raw/, old validate Lambda), then re-upload and process.",
            "Corrija a entrada (chave de vídeo sem raw/, Lambda de validação antiga) e reenvie e processe.",
        ),
    ),
    "FM-17": ModeText(
        T("Video transcode failed in MediaConvert", "Conversão do vídeo falhou no MediaConvert"),
        T(
            "MediaConvert finished with status ERROR ({error}); TOQ is not told, so the MP4 is simply missing.",
            "O MediaConvert terminou com status ERROR ({error}); o TOQ não é avisado, então o MP4 simplesmente não existe.",
        ),
        T(
            "Fix the source video or settings and resubmit the MediaConvert job.",
            "Corrija o vídeo de origem ou as configurações e reenvie o job do MediaConvert.",
        ),
    ),
    "FM-18": ModeText(
        T("Derivative without matching source", "Derivado sem arquivo de origem"),
        T(
            "Consolidate dropped derivatives whose source key matched no asset ({keys}).",
            "A consolidação descartou derivados cuja chave de origem não corresponde a nenhum arquivo ({keys}).",
        ),
        T(
            "Compare the derivative keys with the raw keys (date folders, renamed files).",
            "Compare as chaves dos derivados com as chaves originais (pastas de data, arquivos renomeados).",
        ),
    ),
    "FM-19": ModeText(
        T("Processed without a derivative key", "Processado sem chave de derivado"),
        T(
            "TOQ failed {keys} with MISSING_PROCESSED_KEY: no branch produced a derivative and none reported an error.",
            "O TOQ marcou {keys} como falha com MISSING_PROCESSED_KEY: nenhum ramo gerou derivado nem reportou erro.",
        ),
        T(
            "Check that the state machine and the Lambdas are the same version, then reprocess.",
            "Confira se a máquina de estados e as Lambdas são da mesma versão e reprocesse.",
        ),
    ),
    "FM-20": ModeText(
        T("Callback not delivered to TOQ", "Callback não entregue ao TOQ"),
        T(
            "The callback Lambda could not deliver the result ({error}).",
            "A Lambda de callback não conseguiu entregar o resultado ({error}).",
        ),
        T(
            "Check CALLBACK_URL, the network path to TOQ and TOQ's access log for that minute.",
            "Verifique CALLBACK_URL, o caminho de rede até o TOQ e o log de acesso do TOQ naquele minuto.",
        ),
    ),
    "FM-21": ModeText(
        T("Callback signature problem", "Problema na assinatura do callback"),
        T(
            "TOQ and the callback Lambda disagree on the callback signature ({error}).",
            "O TOQ e a Lambda de callback divergem na assinatura do callback ({error}).",
        ),
        T(
            "Align CALLBACK_SECRET with media_processing.callback.shared_secret.",
            "Alinhe CALLBACK_SECRET com media_processing.callback.shared_secret.",
        ),
    ),
    "FM-23": ModeText(
        T("TOQ did not find the job of the callback", "O TOQ não encontrou o job do callback"),
        T(
            "The callback was answered 404 ({error}): job row missing (orphan execution, recreated database or cleaned-up job).",
            "O callback recebeu 404 ({error}): linha do job ausente (execução órfã, banco recriado ou job removido pela limpeza).",
        ),
        T(
            "Check whether the job id was reused or deleted before the callback arrived.",
            "Verifique se o id do job foi reutilizado ou apagado antes de o callback chegar.",
        ),
    ),
    "FM-24": ModeText(
        T("TOQ failed to store the callback", "O TOQ falhou ao gravar o callback"),
        T(
            "TOQ logged a database error while applying the callback ({error}).",
            "O TOQ registrou um erro de banco de dados ao aplicar o callback ({error}).",
        ),
        T(
            "Check TOQ's database health and the callback body size (64 KB).",
            "Verifique a saúde do banco do TOQ e o tamanho do corpo do callback (64 KB).",
        ),
    ),
    "FM-25": ModeText(
        T("Callback status ignored by TOQ", "Status do callback ignorado pelo TOQ"),
        T(
            "TOQ received status {status}, which it does not map: the job status was left unchanged and only callback_body shows the failure.",
            "O TOQ recebeu o status {status}, que ele não mapeia: o status do job ficou inalterado e só o callback_body mostra a falha.",
        ),
        T(
            "Read callback_body for the real error; TOQ needs a mapping for this status.",
            "Leia o callback_body para ver o erro real; o TOQ precisa mapear esse status.",
        ),
    ),
    "FM-26": ModeText(
        T("Callback for a different listing", "Callback de outro anúncio"),
        T(
            "The callback's listing differs from the job's ({error}); TOQ processed it anyway.",
            "O anúncio do callback difere do anúncio do job ({error}); o TOQ o processou mesmo assim.",
        ),
        T(
            "Check for reused job ids or hand-sent messages.",
            "Verifique ids de job reutilizados ou mensagens enviadas manualmente.",
        ),
    ),
    "FM-27": ModeText(
        T("Result for an unknown asset", "Resultado para um arquivo desconhecido"),
        T(
            "TOQ could not find the asset of a result by its raw key ({error}); the result was ignored.",
            "O TOQ não encontrou o arquivo de um resultado pela chave original ({error}); o resultado foi ignorado.",
        ),
        T(
            "Check whether the asset was deleted or re-uploaded during processing.",
            "Verifique se o arquivo foi apagado ou reenviado durante o processamento.",
        ),
    ),
    "FM-28": ModeText(
        T("Assets failed without detail", "Arquivos marcados como falha sem detalhe"),
        T(
            "The failure reached TOQ without per-asset results, so TOQ marked every PROCESSING asset of the listing FAILED with no error code (assets: {count} — {keys}; of them not in this job: {others}).",
            "A falha chegou ao TOQ sem resultado por arquivo, então o TOQ marcou todos os arquivos em PROCESSING do anúncio como FAILED sem código de erro ({count} arquivos: {keys}; {others} deles fora deste job).",
        ),
        T(
            "Tell the user the real cause (origin finding); the listing can be reprocessed with /uploads/process (new job).",
            "Informe ao usuário a causa real (achado de origem); o anúncio pode ser reprocessado com /uploads/process (novo job).",
        ),
    ),
    "FM-29": ModeText(
        T("Job stuck in PENDING", "Job parado em PENDING"),
        T(
            "The job has been {status} for {minutes} minutes and no callback arrived; TOQ's reconciler never touches PENDING processing jobs.",
            "O job está em {status} há {minutes} minutos e nenhum callback chegou; o reconciliador do TOQ nunca atua em jobs de processamento PENDING.",
        ),
        T(
            "Re-request upload URLs for the same type/sequence (resets the assets) or delete the asset, then process again.",
            "Solicite novamente as URLs de upload para o mesmo tipo/sequência (reinicia os arquivos) ou apague o arquivo e processe de novo.",
        ),
    ),
    "FM-30": ModeText(
        T("Finalization failed by the reconciler", "Finalização falhou pelo reconciliador"),
        T(
            "TOQ's reconciler failed the job after 30 minutes without a callback.",
            "O reconciliador do TOQ marcou o job como falha após 30 minutos sem callback.",
        ),
        T(
            "Look at the finalization execution and callback_body; a new ZIP requires an owner rejection (status 8).",
            "Veja a execução de finalização e o callback_body; um novo ZIP exige a rejeição pelo proprietário (status 8).",
        ),
    ),
    "FM-32": ModeText(
        T("ZIP bundle could not be built", "Não foi possível gerar o pacote ZIP"),
        T("The zip Lambda failed: {error}", "A Lambda de ZIP falhou: {error}"),
        T(
            "Fix the cause, then have the owner reject the media (status 8) and complete again.",
            "Corrija a causa, peça ao proprietário para rejeitar as mídias (status 8) e conclua de novo.",
        ),
    ),
    "FM-33": ModeText(
        T("Empty ZIP bundle", "Pacote ZIP vazio"),
        T(
            "The finalization succeeded but zipped no assets.",
            "A finalização teve sucesso, mas não compactou nenhum arquivo.",
        ),
        T(
            "Check the listing's processed assets and their raw keys.",
            "Verifique os arquivos processados do anúncio e suas chaves originais.",
        ),
    ),
    "FM-34": ModeText(
        T("Finalization failed without callback (States.Runtime)", "Finalização falhou sem callback (States.Runtime)"),
        T(
            "The finalization execution failed with States.Runtime ({error}); no callback, the reconciler fails the job after 30 minutes.",
            "A execução de finalização falhou com States.Runtime ({error}); sem callback, o reconciliador marca o job como falha após 30 minutos.",
        ),
        T(
            "Enable tracing on the TOQ server (traceparent) or fix the state machine input.",
            "Ative o tracing no servidor TOQ (traceparent) ou corrija a entrada da máquina de estados.",
        ),
    ),
    "FM-37": ModeText(
        T("Job row deleted in TOQ", "Linha do job apagada no TOQ"),
        T(
            "The job no longer exists in TOQ's database; toqdash keeps its history.",
            "O job não existe mais no banco do TOQ; o toqdash mantém o histórico.",
        ),
        T(
            "Nothing to fix; the retention cleaner deletes terminal jobs after 90 days.",
            "Nada a corrigir; a limpeza de retenção apaga jobs terminados após 90 dias.",
        ),
    ),
    "FM-38": ModeText(
        T("Job id reused", "Id de job reutilizado"),
        T(
            "TOQ's database was recreated and this job id now names another job (generation {generation}).",
            "O banco do TOQ foi recriado e este id de job agora identifica outro job (geração {generation}).",
        ),
        T(
            "Identify jobs by id and generation (or execution ARN), not by id alone.",
            "Identifique jobs por id e geração (ou ARN da execução), não só pelo id.",
        ),
    ),
    "FM-39": ModeText(
        T("Lambda deployed differently from the repository", "Lambda implantada diferente do repositório"),
        T(
            "{function} ran without what the code needs: {detail}.",
            "{function} rodou sem o que o código precisa: {detail_pt}.",
        ),
        T(
            "Attach the ffmpeg layer (toq-ffmpeg-layer-staging) and set FFMPEG_PATH=/opt/bin/ffmpeg, then reprocess.",
            "Anexe a layer do ffmpeg (toq-ffmpeg-layer-staging) e defina FFMPEG_PATH=/opt/bin/ffmpeg; depois reprocesse.",
        ),
    ),
}

# (failure mode, cause) → (what the cause means, action or None for the mode's default).
CAUSE_TEXT: dict[tuple[str, str], tuple[Text, Text | None]] = {
    ("FM-12", "ffmpeg-missing"): (
        T(
            "The ffmpeg binary does not exist in the Lambda (no ffmpeg layer, wrong FFMPEG_PATH or a layer zip with the wrong folders).",
            "O binário do ffmpeg não existe na Lambda (sem a layer do ffmpeg, FFMPEG_PATH errado ou zip da layer com pastas erradas).",
        ),
        T(
            "Attach the ffmpeg layer to listing-media-video_thumbnails and set FFMPEG_PATH=/opt/bin/ffmpeg, then reprocess the listing.",
            "Anexe a layer do ffmpeg à listing-media-video_thumbnails e defina FFMPEG_PATH=/opt/bin/ffmpeg; depois reprocesse o anúncio.",
        ),
    ),
    ("FM-12", "ffmpeg-permission-denied"): (
        T(
            "The ffmpeg binary exists but is not executable (file mode in the layer zip).",
            "O binário do ffmpeg existe, mas não é executável (permissões do arquivo no zip da layer).",
        ),
        T(
            "Rebuild the layer with chmod +x on bin/ffmpeg, publish it and reprocess.",
            "Gere a layer de novo com chmod +x em bin/ffmpeg, publique e reprocesse.",
        ),
    ),
    ("FM-12", "ffmpeg-exec-format"): (
        T(
            "The ffmpeg binary is built for another CPU architecture or is not an executable.",
            "O binário do ffmpeg foi compilado para outra arquitetura de CPU ou não é um executável.",
        ),
        T(
            "Publish an x86_64 static ffmpeg in the layer, then reprocess.",
            "Publique um ffmpeg estático x86_64 na layer e reprocesse.",
        ),
    ),
    ("FM-12", "ffmpeg-decode-failed"): (
        T(
            "ffmpeg ran but could not decode the video (codec or corrupt file).",
            "O ffmpeg rodou, mas não conseguiu decodificar o vídeo (codec ou arquivo corrompido).",
        ),
        T("Ask for the video again in H.264/MP4, then process.", "Peça o vídeo novamente em H.264/MP4 e processe."),
    ),
    ("FM-12", "no-space-left"): (
        T(
            "The video did not fit in the Lambda's temporary storage (512 MB by default).",
            "O vídeo não coube no armazenamento temporário da Lambda (512 MB por padrão).",
        ),
        T(
            "Raise the Lambda's ephemeral storage or lower the upload size limit, then reprocess.",
            "Aumente o armazenamento efêmero da Lambda ou reduza o limite de upload e reprocesse.",
        ),
    ),
    ("FM-12", "s3-download-failed"): (
        T(
            "The Lambda could not download the video from S3 (permissions or KMS).",
            "A Lambda não conseguiu baixar o vídeo do S3 (permissões ou KMS).",
        ),
        T(
            "Check the Lambda role's s3:GetObject and kms:Decrypt, then reprocess.",
            "Verifique s3:GetObject e kms:Decrypt do papel da Lambda e reprocesse.",
        ),
    ),
    ("FM-12", "s3-upload-failed"): (
        T("The Lambda could not upload the thumbnail to S3.", "A Lambda não conseguiu enviar a miniatura para o S3."),
        T(
            "Check the Lambda role's s3:PutObject and kms:GenerateDataKey, then reprocess.",
            "Verifique s3:PutObject e kms:GenerateDataKey do papel da Lambda e reprocesse.",
        ),
    ),
    ("FM-12", "invalid-key"): (
        T(
            "The video's key has no raw/ segment, so no thumbnail key can be derived.",
            "A chave do vídeo não tem o segmento raw/, então não dá para derivar a chave da miniatura.",
        ),
        T("Re-upload the video through TOQ's upload URLs.", "Reenvie o vídeo pelas URLs de upload do TOQ."),
    ),
    ("FM-12", "empty-thumbnail"): (
        T(
            "ffmpeg exited without writing a frame (a clip shorter than 1 second), so an empty thumbnail was stored and no error was reported.",
            "O ffmpeg terminou sem gravar nenhum quadro (vídeo com menos de 1 segundo), então uma miniatura vazia foi gravada e nenhum erro foi reportado.",
        ),
        T(
            "Ask for a longer video, or lower VIDEO_THUMBNAIL_SECOND, then reprocess.",
            "Peça um vídeo mais longo ou reduza VIDEO_THUMBNAIL_SECOND e reprocesse.",
        ),
    ),
    ("FM-11", "image-undecodable"): (
        T(
            "The file is not a decodable image (HEIC, PDF, corrupt file or a video sent as a photo).",
            "O arquivo não é uma imagem decodificável (HEIC, PDF, arquivo corrompido ou vídeo enviado como foto).",
        ),
        T("Ask for the photo again as JPEG or PNG, then process.", "Peça a foto novamente em JPEG ou PNG e processe."),
    ),
    ("FM-11", "video-sent-to-image-branch"): (
        T(
            "A video was sent to the image-thumbnail code (the image branch before 2026-01-05 15:54 did this).",
            "Um vídeo foi enviado ao código de miniaturas de imagem (o ramo de imagem anterior a 05/01/2026 15:54 fazia isso).",
        ),
        T(
            "Deploy the current thumbnails Lambda and state machine, then reprocess.",
            "Implante a Lambda de miniaturas e a máquina de estados atuais e reprocesse.",
        ),
    ),
    ("FM-11", "s3-download-failed"): (
        T("The Lambda could not download the image from S3.", "A Lambda não conseguiu baixar a imagem do S3."),
        None,
    ),
    ("FM-11", "s3-upload-failed"): (
        T(
            "The Lambda could not upload a resized image to S3.",
            "A Lambda não conseguiu enviar uma imagem redimensionada para o S3.",
        ),
        None,
    ),
    ("FM-14", "derivative-errors-escalated"): (
        T(
            "The consolidate build of 2026-01-05 15:54–16:05 turned per-asset branch errors into {attempts} failed attempts, and ReportFailure sent TOQ a failure without outputs.",
            "A versão da consolidação de 05/01/2026 15:54–16:05 transformou erros por arquivo dos ramos em {attempts} tentativas com falha, e o ReportFailure enviou ao TOQ uma falha sem resultados.",
        ),
        T(
            "Deploy the consolidate Lambda that returns PARTIAL_SUCCESS (commit c03eeda0 or later), then reprocess.",
            "Implante a Lambda de consolidação que retorna PARTIAL_SUCCESS (commit c03eeda0 ou posterior) e reprocesse.",
        ),
    ),
    ("FM-14", "lambda-timeout"): (
        T(
            "The consolidate Lambda (3 s, 128 MB) timed out.",
            "A Lambda de consolidação (3 s, 128 MB) estourou o tempo.",
        ),
        T(
            "Raise the consolidate Lambda's timeout and memory.",
            "Aumente o timeout e a memória da Lambda de consolidação.",
        ),
    ),
    ("FM-14", "data-limit-exceeded"): (
        T(
            "A state's input or output exceeded 256 KB; the execution failed without any callback.",
            "A entrada ou saída de um estado passou de 256 KB; a execução falhou sem callback.",
        ),
        T("Split the job into smaller batches.", "Divida o job em lotes menores."),
    ),
    ("FM-20", "callback-url-unset"): (
        T("CALLBACK_URL is not set on the callback Lambda.", "CALLBACK_URL não está definida na Lambda de callback."),
        None,
    ),
    ("FM-28", "bulk-failed-without-detail"): (
        T(
            "The per-asset truth survives only in the execution history and the consolidate log, not in TOQ.",
            "O resultado real por arquivo só existe no histórico da execução e no log da consolidação, não no TOQ.",
        ),
        None,
    ),
    ("FM-28", "reconciler-bulk-failed"): (
        T(
            "TOQ's reconciler failed the job and its PROCESSING assets after the timeout.",
            "O reconciliador do TOQ marcou o job e seus arquivos em PROCESSING como falha após o tempo limite.",
        ),
        None,
    ),
    ("FM-29", "no-execution-found"): (
        T(
            "No Step Functions execution is known for this job: the message was not consumed, not parsed, or the execution could not start (FM-05/06/07).",
            "Nenhuma execução do Step Functions é conhecida para este job: a mensagem não foi consumida, não foi interpretada ou a execução não pôde iniciar (FM-05/06/07).",
        ),
        None,
    ),
    ("FM-29", "execution-failed-without-callback"): (
        T(
            "Its execution failed with an error the state machine cannot catch, so no callback was sent.",
            "A execução falhou com um erro que a máquina de estados não captura, então nenhum callback foi enviado.",
        ),
        None,
    ),
    ("FM-29", "execution-still-running"): (
        T("Its execution is still running.", "A execução ainda está rodando."),
        None,
    ),
    ("FM-29", "execution-aborted"): (
        T("Its execution was aborted by hand; no callback.", "A execução foi abortada manualmente; sem callback."),
        None,
    ),
    ("FM-30", "reconciled-without-callback"): (
        T(
            "If callback_body shows FINALIZATION_FAILED, a failure callback did arrive but TOQ ignored it (FM-25).",
            "Se o callback_body mostrar FINALIZATION_FAILED, um callback de falha chegou, mas o TOQ o ignorou (FM-25).",
        ),
        None,
    ),
    ("FM-39", "ffmpeg-layer-missing"): (
        T(
            "The function was created by scripts/deploy_lambdas.sh without the ffmpeg layer, so the code's fallback /opt/ffmpeg/ffmpeg does not exist.",
            "A função foi criada por scripts/deploy_lambdas.sh sem a layer do ffmpeg, então o caminho padrão do código /opt/ffmpeg/ffmpeg não existe.",
        ),
        None,
    ),
}

# Evidence that would have made a conclusion certain, when it was not collected.
MISSING: dict[str, Text] = {
    "history": T(
        "execution history (branch outputs, consolidate attempts)",
        "histórico da execução (saídas dos ramos, tentativas da consolidação)",
    ),
    "video_lambda_config": T(
        "configuration of listing-media-video_thumbnails at the time (Layers, FFMPEG_PATH)",
        "configuração da listing-media-video_thumbnails na época (Layers, FFMPEG_PATH)",
    ),
    "assets": T("media_assets rows of the listing", "linhas de media_assets do anúncio"),
    "execution": T("the job's Step Functions execution", "a execução do Step Functions do job"),
    "origin": T(
        "the evidence naming the first failure (execution history, Lambda logs)",
        "a evidência que aponta a primeira falha (histórico da execução, logs das Lambdas)",
    ),
}

GENERIC_CAUSE = T("Cause: {cause}.", "Causa: {cause}.")
