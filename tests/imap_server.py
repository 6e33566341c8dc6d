"""A small IMAP4rev1 server on loopback that keeps its mailboxes in memory (RFC 3501 subset).

Just enough for :mod:`imaplib` clients: the greeting, CAPABILITY, NOOP, LOGIN (checked against
one user), SELECT and EXAMINE, SEARCH (ALL, SEEN, UNSEEN, DELETED, UNDELETED), FETCH (FLAGS,
UID, RFC822.SIZE, RFC822, BODY[], BODY.PEEK[]; RFC822 and BODY[] set ``\\Seen`` as RFC 3501
says), STORE (FLAGS, +FLAGS, -FLAGS and their .SILENT forms), EXPUNGE, CLOSE and LOGOUT, with
client literals and quoted strings. Sequence numbers are the mailbox order, shared by all
sessions: tests run one client at a time. A test puts messages in with :meth:`deliver` and
looks at :meth:`messages` (what is left, with flags) and :attr:`IMAPServer.expunged`.
"""

from __future__ import annotations

import re
import socketserver
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeAlias, cast
from urllib.parse import quote

Arg: TypeAlias = "str | list[Arg]"

SYSTEM_FLAGS = {f.lower(): f for f in ("\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft")}
MAX_LINE = 65536
MAX_LITERAL = 10 * 1024 * 1024
_LITERAL_AT_END = re.compile(rb"\{(\d+)\}\r\n$")
_LITERAL = re.compile(rb"\{(\d+)\}\r\n")
_ATOM = re.compile(rb'[^ ()"{\r\n]+')


class ParseError(ValueError):
    """A command line this server cannot read."""


@dataclass
class StoredMessage:
    """One message of a mailbox: its UID, its bytes and its flags."""

    uid: int
    raw: bytes
    flags: set[str] = field(default_factory=set)


def parse_arguments(data: bytes) -> list[Arg]:
    """Atoms, quoted strings, literals and parenthesized lists of a command, in order."""
    stack: list[list[Arg]] = [[]]
    pos = 0
    while pos < len(data):
        char = data[pos : pos + 1]
        if char in (b" ", b"\r", b"\n"):
            pos += 1
        elif char == b"(":
            inner: list[Arg] = []
            stack[-1].append(inner)
            stack.append(inner)
            pos += 1
        elif char == b")":
            if len(stack) == 1:
                raise ParseError("unbalanced )")
            stack.pop()
            pos += 1
        elif char == b'"':
            pos += 1
            out = bytearray()
            while True:
                if pos >= len(data):
                    raise ParseError("unterminated quoted string")
                byte = data[pos]
                if byte == 0x5C:  # backslash quotes the next character
                    out += data[pos + 1 : pos + 2]
                    pos += 2
                elif byte == 0x22:
                    pos += 1
                    break
                else:
                    out.append(byte)
                    pos += 1
            stack[-1].append(out.decode("utf-8", "replace"))
        elif char == b"{":
            literal = _LITERAL.match(data, pos)
            if literal is None:
                raise ParseError("bad literal")
            start = literal.end()
            end = start + int(literal.group(1))
            if end > len(data):
                raise ParseError("short literal")
            stack[-1].append(data[start:end].decode("utf-8", "replace"))
            pos = end
        else:
            atom = _ATOM.match(data, pos)
            if atom is None:
                raise ParseError("bad atom")
            stack[-1].append(atom.group().decode("utf-8", "replace"))
            pos = atom.end()
    if len(stack) != 1:
        raise ParseError("unbalanced (")
    return stack[0]


def _sequence(spec: str, count: int) -> list[int]:
    """Sequence numbers (1-based) named by a set such as ``1``, ``2:4``, ``3:*`` or ``1,5``."""
    numbers: list[int] = []
    for part in spec.split(","):
        ends = [count if end == "*" else int(end) for end in part.split(":", 1)]
        if any(end < 1 or end > count for end in ends):
            raise LookupError(f"no message {part}")
        low, high = min(ends), max(ends)
        numbers.extend(n for n in range(low, high + 1) if n not in numbers)
    return numbers


class _TCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    imap: IMAPServer


class _Session(socketserver.StreamRequestHandler):
    """One client connection: reads tagged commands and answers them."""

    timeout = 10

    def setup(self) -> None:
        super().setup()
        self.imap = cast(_TCPServer, self.server).imap
        self.state = "nonauth"
        self.mailbox: str | None = None
        self.readonly = False

    def _send(self, line: str | bytes) -> None:
        data = line.encode() if isinstance(line, str) else line
        self.wfile.write(data + b"\r\n")

    def _read_command(self) -> bytes | None:
        """One command as sent, literals included (each announced and read in turn)."""
        parts: list[bytes] = []
        while True:
            line = self.rfile.readline(MAX_LINE)
            if not line:
                return None
            parts.append(line)
            literal = _LITERAL_AT_END.search(line)
            if literal is None:
                return b"".join(parts)
            size = int(literal.group(1))
            if size > MAX_LITERAL:
                raise ParseError("literal too large")
            self._send("+ Ready for literal data")
            parts.append(self.rfile.read(size))

    def handle(self) -> None:
        self._send("* OK [CAPABILITY IMAP4rev1] Envoy test IMAP server ready")
        while self.state != "logout":
            try:
                data = self._read_command()
            except (OSError, ParseError):
                return
            if data is None:
                return
            try:
                args = parse_arguments(data)
            except ParseError as exc:
                self._send(f"* BAD {exc}")
                continue
            if len(args) < 2 or not all(isinstance(a, str) for a in args[:2]):
                self._send("* BAD expected a tag and a command")
                continue
            tag, name = str(args[0]), str(args[1]).upper()
            self.imap.commands.append(name)
            self._dispatch(tag, name, args[2:])

    def _dispatch(self, tag: str, name: str, args: list[Arg]) -> None:
        states = {
            "CAPABILITY": ("nonauth", "auth", "selected"),
            "NOOP": ("nonauth", "auth", "selected"),
            "LOGOUT": ("nonauth", "auth", "selected"),
            "LOGIN": ("nonauth",),
            "SELECT": ("auth", "selected"),
            "EXAMINE": ("auth", "selected"),
            "SEARCH": ("selected",),
            "FETCH": ("selected",),
            "STORE": ("selected",),
            "EXPUNGE": ("selected",),
            "CLOSE": ("selected",),
        }
        if name not in states:
            self._send(f"{tag} BAD unknown command {name}")
            return
        if self.state not in states[name]:
            self._send(f"{tag} BAD {name} not allowed now")
            return
        try:
            outcome = getattr(self, f"_cmd_{name.lower()}")(args)
        except (LookupError, ValueError, TypeError) as exc:
            self._send(f"{tag} BAD {name} {exc}")
            return
        self._send(f"{tag} {outcome}")

    # ------------------------------------------------------------------ commands

    def _cmd_capability(self, args: list[Arg]) -> str:
        self._send("* CAPABILITY IMAP4rev1")
        return "OK CAPABILITY completed"

    def _cmd_noop(self, args: list[Arg]) -> str:
        return "OK NOOP completed"

    def _cmd_logout(self, args: list[Arg]) -> str:
        self._send("* BYE logging out")
        self.state = "logout"
        return "OK LOGOUT completed"

    def _cmd_login(self, args: list[Arg]) -> str:
        if len(args) != 2 or not all(isinstance(a, str) for a in args):
            raise ValueError("needs a user name and a password")
        user, password = str(args[0]), str(args[1])
        self.imap.logins.append((user, password))
        if (user, password) != (self.imap.username, self.imap.password):
            return "NO [AUTHENTICATIONFAILED] Authentication failed"
        self.state = "auth"
        return "OK LOGIN completed"

    def _select(self, args: list[Arg], readonly: bool) -> str:
        if len(args) != 1 or not isinstance(args[0], str):
            raise ValueError("needs one mailbox name")
        self.state, self.mailbox = "auth", None  # a failed SELECT leaves none selected
        name = self.imap.mailbox_name(args[0])
        if name is None:
            return "NO [NONEXISTENT] Mailbox does not exist"
        self.state, self.mailbox, self.readonly = "selected", name, readonly
        with self.imap.lock:
            box = self.imap.mailboxes[name]
            self._send("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)")
            self._send(f"* {len(box)} EXISTS")
            self._send("* 0 RECENT")
            self._send(f"* OK [UIDVALIDITY {self.imap.uid_validity}] UIDs valid")
            self._send(f"* OK [UIDNEXT {self.imap.next_uid}] Predicted next UID")
        access = "READ-ONLY" if readonly else "READ-WRITE"
        return f"OK [{access}] {'EXAMINE' if readonly else 'SELECT'} completed"

    def _cmd_select(self, args: list[Arg]) -> str:
        return self._select(args, readonly=False)

    def _cmd_examine(self, args: list[Arg]) -> str:
        return self._select(args, readonly=True)

    def _box(self) -> list[StoredMessage]:
        assert self.mailbox is not None
        return self.imap.mailboxes[self.mailbox]

    def _cmd_search(self, args: list[Arg]) -> str:
        keys = [str(a).upper() for a in args if isinstance(a, str)]
        if len(keys) != len(args):
            raise ValueError("lists are not supported")
        if keys[:1] == ["CHARSET"]:
            keys = keys[2:]
        tests: dict[str, Callable[[StoredMessage], bool]] = {
            "ALL": lambda m: True,
            "SEEN": lambda m: "\\Seen" in m.flags,
            "UNSEEN": lambda m: "\\Seen" not in m.flags,
            "DELETED": lambda m: "\\Deleted" in m.flags,
            "UNDELETED": lambda m: "\\Deleted" not in m.flags,
        }
        unknown = [k for k in keys if k not in tests]
        if unknown or not keys:
            raise ValueError(f"unsupported search keys {unknown}")
        with self.imap.lock:
            found = [
                str(n)
                for n, message in enumerate(self._box(), 1)
                if all(tests[k](message) for k in keys)
            ]
        self._send(" ".join(["* SEARCH", *found]))
        return "OK SEARCH completed"

    def _cmd_fetch(self, args: list[Arg]) -> str:
        if len(args) != 2 or not isinstance(args[0], str):
            raise ValueError("needs a sequence set and items")
        wanted = [str(i).upper() for i in (args[1] if isinstance(args[1], list) else [args[1]])]
        known = {"FLAGS", "UID", "RFC822.SIZE", "RFC822", "BODY[]", "BODY.PEEK[]"}
        if not wanted or any(item not in known for item in wanted):
            raise ValueError(f"unsupported items {wanted}")
        with self.imap.lock:
            box = self._box()
            for number in _sequence(args[0], len(box)):
                message = box[number - 1]
                marks_seen = not self.readonly and ("RFC822" in wanted or "BODY[]" in wanted)
                flags_changed = marks_seen and "\\Seen" not in message.flags
                if marks_seen:
                    message.flags.add("\\Seen")
                items: list[bytes] = []
                if "UID" in wanted:
                    items.append(f"UID {message.uid}".encode())
                if "FLAGS" in wanted or flags_changed:
                    items.append(f"FLAGS ({' '.join(sorted(message.flags))})".encode())
                if "RFC822.SIZE" in wanted:
                    items.append(f"RFC822.SIZE {len(message.raw)}".encode())
                for item in wanted:
                    if item in ("RFC822", "BODY[]", "BODY.PEEK[]"):
                        label = "RFC822" if item == "RFC822" else "BODY[]"
                        items.append(f"{label} {{{len(message.raw)}}}\r\n".encode() + message.raw)
                self._send(f"* {number} FETCH (".encode() + b" ".join(items) + b")")
        return "OK FETCH completed"

    def _cmd_store(self, args: list[Arg]) -> str:
        if len(args) != 3 or not isinstance(args[0], str) or not isinstance(args[1], str):
            raise ValueError("needs a sequence set, an item and flags")
        if self.readonly:
            return "NO mailbox is read-only"
        item = args[1].upper()
        silent = item.endswith(".SILENT")
        mode = item.removesuffix(".SILENT")
        if mode not in ("FLAGS", "+FLAGS", "-FLAGS"):
            raise ValueError(f"unsupported item {item}")
        given = args[2] if isinstance(args[2], list) else [args[2]]
        if not all(isinstance(f, str) for f in given):
            raise ValueError("flags must be atoms")
        flags = {SYSTEM_FLAGS.get(str(f).lower(), str(f)) for f in given}
        unknown = [f for f in flags if f.startswith("\\") and f not in SYSTEM_FLAGS.values()]
        if unknown:
            raise ValueError(f"unknown flags {unknown}")
        with self.imap.lock:
            box = self._box()
            for number in _sequence(args[0], len(box)):
                message = box[number - 1]
                if mode == "FLAGS":
                    message.flags = set(flags)
                elif mode == "+FLAGS":
                    message.flags |= flags
                else:
                    message.flags -= flags
                if not silent:
                    self._send(f"* {number} FETCH (FLAGS ({' '.join(sorted(message.flags))}))")
        return "OK STORE completed"

    def _expunge(self, announce: bool) -> None:
        with self.imap.lock:
            box = self._box()
            number = 1
            while number <= len(box):
                if "\\Deleted" in box[number - 1].flags:
                    self.imap.expunged.append(box.pop(number - 1))
                    if announce:
                        self._send(f"* {number} EXPUNGE")
                else:
                    number += 1

    def _cmd_expunge(self, args: list[Arg]) -> str:
        if self.readonly:
            return "NO mailbox is read-only"
        self._expunge(announce=True)
        return "OK EXPUNGE completed"

    def _cmd_close(self, args: list[Arg]) -> str:
        if not self.readonly:
            self._expunge(announce=False)
        self.state, self.mailbox = "auth", None
        return "OK CLOSE completed"


class IMAPServer:
    """The server: one user, named mailboxes (INBOX at first), on ``127.0.0.1`` only."""

    host = "127.0.0.1"

    def __init__(self, username: str, password: str) -> None:
        self.username = username
        self.password = password
        self.lock = threading.RLock()
        self.mailboxes: dict[str, list[StoredMessage]] = {"INBOX": []}
        self.expunged: list[StoredMessage] = []
        self.logins: list[tuple[str, str]] = []
        self.commands: list[str] = []
        self.uid_validity = 1
        self.next_uid = 1
        self._server = _TCPServer((self.host, 0), _Session)
        self._server.imap = self
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="imap-server", daemon=True
        )

    def start(self) -> IMAPServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, close the listening socket and wait for the serving thread."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def url(
        self, mailbox: str = "INBOX", username: str | None = None, password: str | None = None
    ) -> str:
        """``imap://user:pass@127.0.0.1:PORT/MAILBOX`` with each part percent-encoded."""
        user = quote(self.username if username is None else username, safe="")
        secret = quote(self.password if password is None else password, safe="")
        return f"imap://{user}:{secret}@{self.host}:{self.port}/{quote(mailbox, safe='')}"

    def mailbox_name(self, name: str) -> str | None:
        """The stored name of a mailbox (INBOX in any case), or None when there is none."""
        if name.upper() == "INBOX":
            return "INBOX"
        return name if name in self.mailboxes else None

    def create(self, mailbox: str) -> None:
        with self.lock:
            self.mailboxes.setdefault(mailbox, [])

    def deliver(self, raw: bytes, mailbox: str = "INBOX", flags: tuple[str, ...] = ()) -> int:
        """Append a message (as a delivery agent would); return its UID."""
        with self.lock:
            uid = self.next_uid
            self.next_uid += 1
            self.mailboxes[mailbox].append(StoredMessage(uid, raw, set(flags)))
            return uid

    def messages(self, mailbox: str = "INBOX") -> list[StoredMessage]:
        """A copy of what the mailbox holds now, in order."""
        with self.lock:
            return [StoredMessage(m.uid, m.raw, set(m.flags)) for m in self.mailboxes[mailbox]]
