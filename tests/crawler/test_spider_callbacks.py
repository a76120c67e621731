"""Scrapy's per-response check of generator callbacks is off (``WARN_ON_GENERATOR_RETURN_VALUE``,
crawler/settings.py: a source parse per response); what it would have said is checked here, once,
for every method of every spider of the project."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import scrapy
from scrapy.utils.misc import is_generator_with_return_value

import crawler.spiders
from crawler import settings


def _spider_classes() -> list[type]:
    classes = []
    for info in pkgutil.iter_modules(crawler.spiders.__path__):
        module = importlib.import_module(f"crawler.spiders.{info.name}")
        classes += [c for _, c in inspect.getmembers(module, inspect.isclass)
                    if issubclass(c, scrapy.Spider) and c.__module__ == module.__name__]
    return classes


def test_no_spider_callback_is_a_generator_that_returns_a_value():
    classes = _spider_classes()
    assert len(classes) >= 7  # the base and one per kind
    generators = 0
    for cls in classes:
        for name, fn in vars(cls).items():
            if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
                generators += 1
                assert not is_generator_with_return_value(fn), f"{cls.__name__}.{name} returns a value"
    assert generators >= 7


def test_the_per_response_check_is_off():
    assert settings.WARN_ON_GENERATOR_RETURN_VALUE is False
