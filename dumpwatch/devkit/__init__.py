"""Everything the demo and the tests need that a deployment does not: synthetic people, local servers.

- :mod:`dumpwatch.devkit.synth`: synthetic patients (Faker, ``demo``/``test`` extra) and the shapes
  a repost takes (csv, json, kv, chatter, sql, xlsx …); never a real person;
- :mod:`dumpwatch.devkit.localsites`: local stand-ins for the outside world on 127.0.0.1 (a real
  pastebin, a static site server, an SMTP server, a webhook receiver);
- :mod:`dumpwatch.devkit.demo`: the offline demo pipeline behind ``dumpwatch demo``.

Faker, pinnwand and aiosmtpd come with the ``demo`` and ``test`` extras only: they are imported
inside the functions that use them, never when a module of this package is imported.
"""
