"""Launch a real pinnwand pastebin on 127.0.0.1 only, plus the listings real paste sites offer.

pinnwand has no listing of recent pastes, so two tornado handlers are added next to the real app,
reading its own database:

- ``/dw/recent.json``: a scraping API shaped like Pastebin's (``key``, ``date``, ``size``,
  ``scrape_url``, ``full_url``), newest first;
- ``/dw/archive``: an HTML archive page (``table.maintable`` of links to ``/SLUG``).

Usage: ``python pinnwand_server.py CONFIG.toml PORT`` (see ../../shared/TARGETS.md).
"""

from __future__ import annotations

import asyncio
import json
import sys
import tomllib


def main(config_path: str, port: int) -> None:
    import pinnwand.configuration as configuration

    with open(config_path, "rb") as fh:
        for key, value in tomllib.load(fh).items():
            setattr(configuration, key, value)

    import tornado.routing
    import tornado.web
    from pinnwand import database
    from pinnwand.http import make_application

    database.Base.metadata.create_all(database._engine)

    def newest(limit: int) -> list[tuple]:
        with database.session() as session:
            pastes = (session.query(database.Paste).order_by(database.Paste.id.desc()).limit(limit).all())
            return [(p.slug, p.pub_date.isoformat() if p.pub_date else "",
                     [(f.slug, len((f.raw or "").encode("utf-8"))) for f in p.files]) for p in pastes]

    class Recent(tornado.web.RequestHandler):
        def get(self) -> None:
            base = f"http://{self.request.host}"
            items = []
            for slug, date, files in newest(int(self.get_argument("limit", "100"))):
                for fslug, size in files:
                    items.append({"key": fslug, "date": date, "size": size, "title": "",
                                  "scrape_url": f"{base}/raw/{fslug}", "full_url": f"{base}/{slug}"})
            self.set_header("Content-Type", "application/json")
            self.write(json.dumps(items))

    class Archive(tornado.web.RequestHandler):
        def get(self) -> None:
            rows = "".join(f'<tr><td><a href="/{slug}">paste {slug}</a></td><td>{date}</td></tr>'
                           for slug, date, _ in newest(int(self.get_argument("limit", "100"))))
            self.write(f"<html><body><h1>Pastes Archive</h1><table class=\"maintable\"><tr><th>Name</th>"
                       f"<th>Posted</th></tr>{rows}</table></body></html>")

    app = make_application(False)
    for pattern, handler in ((r"/dw/recent\.json", Recent), (r"/dw/archive", Archive)):
        app.wildcard_router.rules.insert(
            0, tornado.routing.Rule(tornado.routing.PathMatches(pattern), handler))

    async def serve() -> None:
        app.listen(port, address="127.0.0.1")
        await asyncio.Event().wait()

    asyncio.run(serve())


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
