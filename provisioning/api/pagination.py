"""Lists page by cursor, newest first: each page is one indexed range, whatever the table's size (no COUNT)."""

from rest_framework.pagination import CursorPagination


class NewestFirst(CursorPagination):
    """``?cursor=`` from the previous page's ``next``; ``page_size`` up to 200."""

    ordering = "-id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
