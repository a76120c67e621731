"""What several test folders share, imported as ``tests.helpers.…`` (pytest's ``pythonpath = ["."]``).

    alertkit   synthetic findings, a base alerting configuration, a capturing channel, a real
               webhook receiver and SMTP server (from dumpwatch.devkit.localsites), identifier checks
    crawlkit   a crawl run in a child process against local sites, the synthetic leak and noise
    sitesrv    saved page structures of forums, feeds and Telegram previews (tests/crawler/sites/)
    imports    every import of a module read from its source, and import circles (layout tests)
"""
