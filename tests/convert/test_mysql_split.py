"""The MySQL script splitter: statements and lines as the ``mysql`` client sees them."""

from __future__ import annotations

import pytest

from dsql_migrate.convert.mysql_split import MySQLScriptError, split_mysql


def test_statements_carry_the_line_of_their_first_character() -> None:
    text = "-- header\n\nCREATE TABLE a (x INT);\n/* c */ INSERT INTO a\nVALUES (1);\n"
    statements = split_mysql(text, "f.sql")
    assert [(s.line, s.text.split()[0]) for s in statements] == [(3, "CREATE"), (4, "INSERT")]


def test_delimiters_inside_strings_names_and_comments_do_not_split() -> None:
    text = (
        "INSERT INTO `a;b` VALUES ('x;y', \"it\\\";s\", 'a\\';b', 'c'';d'); # c;\n"
        "-- also; not\nSELECT 1;"
    )
    statements = split_mysql(text, "f.sql")
    assert len(statements) == 2
    assert "'a\\';b'" in statements[0].text
    assert statements[1].line == 3


def test_versioned_comments_are_run_and_plain_comments_dropped() -> None:
    text = (
        "/*!40101 SET NAMES utf8mb4 */;\n"
        "/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`%`*/ /*!50003 TRIGGER t BEFORE INSERT ON a "
        "FOR EACH ROW SET NEW.x = 1 */;\n"
        "/* just a comment; with a semicolon */\n"
        "/*M!999999\\- enable the sandbox mode */\n"
        "SELECT 1;\n"
    )
    statements = split_mysql(text, "f.sql")
    assert [s.text.split()[0:2] for s in statements] == [
        ["SET", "NAMES"],
        ["CREATE", "DEFINER=`root`@`%`"],
        ["SELECT", "1"],
    ]
    assert statements[2].line == 5


def test_delimiter_blocks_keep_routine_bodies_whole() -> None:
    text = (
        "DELIMITER ;;\n"
        "CREATE PROCEDURE p()\nBEGIN\n  SELECT 1;\n  SELECT 2;\nEND ;;\n"
        "DELIMITER ;\n"
        "SELECT 3;\n"
    )
    statements = split_mysql(text, "f.sql")
    assert len(statements) == 2
    assert statements[0].line == 2 and statements[0].delimiter == ";;"
    assert "SELECT 2;" in statements[0].text
    assert statements[1].text == "SELECT 3" and statements[1].line == 8


def test_a_last_statement_without_delimiter_is_kept() -> None:
    assert [s.text for s in split_mysql("SELECT 1;\nSELECT 2\n", "f.sql")] == [
        "SELECT 1",
        "SELECT 2",
    ]


@pytest.mark.parametrize(
    ("text", "line", "what"),
    [
        ("SELECT 1;\nINSERT INTO a VALUES ('open\n", 2, "not closed"),
        ("SELECT 1;\n/* open\n", 2, "not closed"),
        ("/*!40101 SET x = 1 ;\n", 2, "not closed"),
    ],
)
def test_an_unterminated_string_or_comment_names_file_and_line(
    text: str, line: int, what: str
) -> None:
    with pytest.raises(MySQLScriptError) as error:
        split_mysql(text, "dump.sql")
    assert f"dump.sql:{line}:" in str(error.value)
    assert what in str(error.value)
