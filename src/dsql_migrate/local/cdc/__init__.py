"""Change data capture in the local emulator: a DSQL-style CDC stream on a local Kinesis.

``dsql-migrate local start --cdc`` (or ``CdcSettings(enabled=True)`` in the emulator settings)
starts, with the emulator and stopped with it, moto's server on a free port of 127.0.0.1. It
serves the Kinesis API with one stream of 4 shards (``--cdc-shards``) and DSQL's control plane
with a cluster and a CDC stream (``GetStream`` says ACTIVE), and the emulator puts on that
stream every committed row change of every user table of database ``postgres``, as DSQL does:
one JSON record per changed row per transaction (write set compacted), random partition keys,
at least once, unordered (:mod:`.records` says the envelope and the value encodings).
``--cdc-chaos`` adds duplicates, delays and reordering (:class:`.producer.Sender`).

Discovery contract: while the emulator runs with CDC, ``LocalInstance(dir).cdc_info()`` (and
``dsql-migrate local status --format json``, and the file ``<state dir>/emulator.cdc.json``)
gives these keys:

- ``cdc_kinesis_endpoint``: the ``endpoint_url`` for boto3 (``http://127.0.0.1:PORT``)
- ``cdc_stream_arn``: the Kinesis data stream's ARN (``cdc_stream_name`` its name)
- ``cdc_region``: the region to give boto3 (``us-east-1``)
- ``cdc_access_key_id``, ``cdc_secret_access_key``: dummy credentials (moto checks none)
- ``cdc_cluster_id``: the cluster id the records carry in ``source.cluster``
- ``cdc_dsql_endpoint``, ``cdc_dsql_stream_arn``, ``cdc_dsql_stream_id``: the DSQL control
  plane (same server) and the CDC stream on it, for ``dsql.get_stream(clusterIdentifier=
  cdc_cluster_id, streamIdentifier=cdc_dsql_stream_id)``
- ``cdc_shards``, ``cdc_chaos``: the stream's shard count and whether chaos is on

A client is then ``boto3.client("kinesis", endpoint_url=info["cdc_kinesis_endpoint"],
region_name=info["cdc_region"], aws_access_key_id=info["cdc_access_key_id"],
aws_secret_access_key=info["cdc_secret_access_key"])``: the same code as on AWS but for the
endpoint and credentials.
"""
