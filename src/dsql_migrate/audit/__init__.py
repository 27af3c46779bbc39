"""Audits of a live database against conventions DSQL cannot enforce for you.

- :mod:`.tenancy`: every table carries the tenant column and every key leads with it
  (DSQL.md §6); its definition is shared with the lint rules ``tenant_id_missing`` and
  ``tenant_id_index_order``, so the two can never disagree.
- :mod:`.references`: relationships the model declares but the database does not enforce
  (no foreign keys on the classic profile, or a foreign key left ``NOT VALID``): orphaned child
  rows, found in bounded keyset pages.

This package imports nothing heavy at import time: the linter imports :mod:`.tenancy`.
"""
