"""``--writes=cdc``: a table recreation that keeps up with the application's writes through
DSQL's change data capture stream (DSQL.md §8), with a write freeze of about a second for the
cut-over.

=====================  ==========================================================
module                 concern
=====================  ==========================================================
:mod:`.stream`         reading the Kinesis stream (boto3): every shard, changed keys
:mod:`.resync`         re-syncing changed keys from the source, in legal batches
:mod:`.freeze`         the write freeze (REVOKE), recorded first, always undone
:mod:`.cutover`        the steps' use of the above: start, pre-pass, cut-over
=====================  ==========================================================
"""

from __future__ import annotations
