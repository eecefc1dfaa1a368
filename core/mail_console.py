"""Development mail: each message's plain text, readable in the terminal `make dev` runs in.

Django's console backend prints the whole MIME message: the HTML part as well, and both
quoted-printable, where a long link is cut with `=` at the line ends and `=` itself becomes
`=3D`, so a verification link copied from it leads nowhere. This prints the headers a person
reads and the text part as it was written.
"""

from __future__ import annotations

from django.core.mail.backends.console import EmailBackend as ConsoleEmailBackend

RULE = "-" * 79


class EmailBackend(ConsoleEmailBackend):
    def write_message(self, message) -> None:
        lines = [
            f"Subject: {message.subject}",
            f"From: {message.from_email}",
            f"To: {', '.join(message.to)}",
            "",
            str(message.body).rstrip(),
            RULE,
        ]
        self.stream.write("\n".join(lines) + "\n")
