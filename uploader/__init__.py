"""Store-and-forward of closed event files and clips to the city's S3 bucket (`vigie upload`).

Modules: `config` (the [upload] table), `spool` (what waits, keys, quota), `transfer` (hash, send, resume),
`engine` (the loop), `manifest` (per-day manifests and verify), `state` (journal, status, multipart records),
`s3` (client and error meanings), `cli`. Nothing is imported here so that `vigie run` never loads boto3.
"""
