from __future__ import annotations

from dsql_migrate.sql import parse_script, transaction_blocks, transaction_kind


def test_blocks_and_kinds() -> None:
    script = """
        CREATE TABLE a (id int);
        BEGIN; INSERT INTO a VALUES (1); CREATE INDEX ASYNC ix ON a (id); COMMIT;
        START TRANSACTION; BEGIN; UPDATE a SET id = 2 WHERE id = 1; ROLLBACK;
        BEGIN; DELETE FROM a WHERE id = 3
    """
    stmts = parse_script(script)
    blocks = transaction_blocks(stmts)
    assert len(blocks) == 3
    first, second, third = blocks
    assert first.committed and [s.node_type for s in first.body] == ["InsertStmt", "IndexStmt"]
    assert len(first.ddl) == 1 and len(first.dml) == 1
    assert not second.committed and transaction_kind(second.body[0]) == "TRANS_STMT_BEGIN"
    assert third.end is None and not third.committed
    # kinds are read without decoding the statements' trees
    assert all(s._node is None for s in stmts if s.node_type == "TransactionStmt")
