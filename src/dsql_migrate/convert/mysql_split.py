"""Cut a MySQL script (a mysqldump or hand-written DDL) into statements, with their source lines.

This is the ``mysql`` client's job, so it is done here rather than by the SQL parser: the client
honours ``DELIMITER`` lines (stored routines and triggers), strips comments, and *runs* the text of
versioned comments (``/*!40101 SET NAMES utf8 */``, ``/*!50003 CREATE*/ /*!50003 TRIGGER ...*/``)
because every MySQL server since those versions does. Quotes follow MySQL's default sql_mode:
``'`` and ``"`` delimit strings with backslash escapes, a backtick an identifier.

Blanked text keeps its newlines, so a line inside a statement is still its line in the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import DsqlMigrateError

_DELIMITER_LINE = re.compile(r"[ \t]*delimiter[ \t]+(\S+)[^\n]*(?:\n|$)", re.IGNORECASE)
# /*!40101 and /*M!100100 (MariaDB): versioned comments a server of that version runs
_VERSIONED = re.compile(r"/\*M?!(\d*)")
# mariadb-dump's first line: a client command, not SQL, that no server runs
_MARIADB_SANDBOX = "999999"


_PLAIN: dict[str, re.Pattern[str]] = {}  # per first character of the delimiter
# a quoted string (backslash escapes, doubled quotes) or a backquoted name, whole; one
# character per step, so that an unterminated string fails in linear time
_QUOTED = {
    "'": re.compile(r"'(?:[^'\\]|\\.|'')*'", re.DOTALL),
    '"': re.compile(r'"(?:[^"\\]|\\.|"")*"', re.DOTALL),
    "`": re.compile(r"`(?:[^`]|``)*`"),
}


class MySQLScriptError(DsqlMigrateError):
    """The MySQL script cannot be read: an unterminated string or comment, a parse error."""


@dataclass(frozen=True)
class RawStatement:
    """One statement as the ``mysql`` client would send it: comments blanked, no delimiter."""

    line: int  #: 1-based line of its first character in the source
    text: str
    delimiter: str  #: the delimiter that ended it (``;`` unless a ``DELIMITER`` line changed it)


class _Splitter:
    def __init__(self, text: str, source: str) -> None:
        self.text = text
        self.source = source
        self.pos = 0
        self.line = 1
        self.delimiter = ";"
        self.buffer: list[str] = []
        self.start_line = 0  # line of the first non-blank character of the buffer, 0 = none yet
        self.versioned_open = False  # inside /*!NNNNN ... */: its closing */ is blanked too
        self.statements: list[RawStatement] = []

    def fail(self, what: str, line: int) -> MySQLScriptError:
        return MySQLScriptError(
            f"{self.source}:{line}: {what}",
            hint="check the file is a complete MySQL script (mysqldump output or DDL)",
        )

    def emit(self, text: str) -> None:
        if self.start_line == 0 and text.strip():
            stripped = len(text) - len(text.lstrip())
            self.start_line = self.line + text[:stripped].count("\n")
        self.buffer.append(text)
        self.line += text.count("\n")

    def blank(self, text: str) -> None:
        """Emit ``text`` as spaces, keeping its newlines (line numbers stay true)."""
        self.buffer.append(re.sub(r"[^\n]", " ", text))
        self.line += text.count("\n")

    def flush(self, delimiter: str) -> None:
        body = "".join(self.buffer)
        if body.strip():
            self.statements.append(RawStatement(self.start_line, body.strip(), delimiter))
        self.buffer = []
        self.start_line = 0

    def at_line_start(self) -> bool:
        return self.pos == 0 or self.text[self.pos - 1] == "\n"

    def run(self) -> list[RawStatement]:
        text = self.text
        while self.pos < len(text):
            if self.start_line == 0 and self.at_line_start() and self.take_delimiter_line():
                continue
            if text.startswith(self.delimiter, self.pos):
                self.pos += len(self.delimiter)
                self.flush(self.delimiter)
                continue
            char = text[self.pos]
            if char in "'\"`":
                self.take_quoted(char)
            elif text.startswith("/*", self.pos):
                self.take_block_comment()
            elif self.versioned_open and text.startswith("*/", self.pos):
                self.versioned_open = False
                self.blank("*/")
                self.pos += 2
            elif char == "#" or (
                text.startswith("--", self.pos)
                and (self.pos + 2 >= len(text) or text[self.pos + 2] in " \t\r\n")
            ):
                end = text.find("\n", self.pos)
                end = len(text) if end < 0 else end
                self.blank(text[self.pos : end])
                self.pos = end
            else:
                self.take_plain()
        if self.versioned_open:
            raise self.fail("a /*! ... */ comment is not closed", self.line)
        self.flush("")
        return self.statements

    def take_delimiter_line(self) -> bool:
        match = _DELIMITER_LINE.match(self.text, self.pos)
        if match is None:
            return False
        self.delimiter = match.group(1)
        self.line += match.group(0).count("\n")
        self.pos = match.end()
        return True

    def take_plain(self) -> None:
        # up to the next character that can start something special
        text = self.text
        if text[self.pos] == "\n":  # alone, so that a DELIMITER line is seen at its start
            self.emit("\n")
            self.pos += 1
            return
        pattern = _PLAIN.get(self.delimiter[0])
        if pattern is None:
            pattern = re.compile("[^'\"`/#*\\n" + re.escape(self.delimiter[0]) + "-]*")
            _PLAIN[self.delimiter[0]] = pattern
        match = pattern.match(text, self.pos + 1)
        end = match.end() if match is not None else self.pos + 1
        self.emit(text[self.pos : end])
        self.pos = end

    def take_quoted(self, quote: str) -> None:
        match = _QUOTED[quote].match(self.text, self.pos)
        if match is None:
            raise self.fail(f"a {quote}-quoted string or name is not closed", self.line)
        self.emit(match.group(0))
        self.pos = match.end()

    def take_block_comment(self) -> None:
        text = self.text
        versioned = _VERSIONED.match(text, self.pos)
        if versioned is not None and versioned.group(1) != _MARIADB_SANDBOX:
            # the server runs the content: keep it, blank the marker and (later) its */
            if self.versioned_open:
                raise self.fail("a /*! comment inside another /*! comment", self.line)
            self.versioned_open = True
            self.blank(versioned.group(0))
            self.pos = versioned.end()
            return
        end = text.find("*/", self.pos + 2)
        if end < 0:
            raise self.fail("a /* comment is not closed", self.line)
        self.blank(text[self.pos : end + 2])
        self.pos = end + 2


def split_mysql(text: str, source: str) -> list[RawStatement]:
    """The statements of a MySQL script in order, each with its first line."""
    return _Splitter(text, source).run()
