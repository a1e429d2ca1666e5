"""What every public HTML page of the service answers with, whichever package renders it, and
the small page a browser gets for an error no page handler answered (an unknown address, a
wrong method, a body over its cap, a failure): self-contained, since `registry` may not use
the search pages' templates."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from litestar import MediaType, Request, Response

from registry.problems import PROBLEM_MEDIA_TYPE

# No script, no frames, nothing from elsewhere; forms only to this site. `no-referrer`
# because a search URL can carry a full ID number. `no-store`: a removed listing, or a
# statistic since corrected, must not linger in a shared cache.
PUBLIC_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

# The heading and the sentence a person reads for each status.
_ERROR_WORDS = {
    400: ("请求有误", "提交的内容无法识别，请返回上一页检查后重新提交。"),
    401: ("需要授权", "此页面仅供经授权的用户使用。"),
    403: ("无权访问", "您无权访问此页面。"),
    404: ("页面不存在", "您访问的页面不存在，请检查网址是否正确。"),
    405: ("无法以此方式访问", "此页面不支持这种访问方式，请从首页重新进入。"),
    413: ("提交的内容过大", "提交的内容超过了允许的大小，请精简内容或压缩附件后重新提交。"),
    415: ("无法识别提交的内容", "提交内容的格式无法识别，请使用本站页面上的表单重新提交。"),
    422: ("提交的内容有误", "提交的内容不符合要求，请返回上一页检查后重新提交。"),
    429: ("访问过于频繁", "您所在网络地址的访问次数已达上限，请稍后再试。"),
    500: ("系统出错", "服务器处理您的请求时出错，请稍后再试。"),
    503: ("服务暂时不可用", "服务暂时无法使用，请稍后再试。"),
}
_OTHER_ERROR = ("无法完成请求", "请返回首页重新操作。")

_ERROR_PAGE = """<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{heading} - 失信被执行人名单公示</title>
</head>
<body>
<main>
<h1>{heading}</h1>
<p>{message}</p>
<p><a href="/">返回首页</a></p>
</main>
</body>
</html>
"""


def prefers_html(request: Request[Any, Any, Any]) -> bool:
    """Whether the client is a browser: its Accept ranks text/html above JSON. A client that
    names no type, or `*/*` (curl, an HTTP library), is a program and keeps the problem+json."""
    offered = [PROBLEM_MEDIA_TYPE, MediaType.JSON, MediaType.HTML]
    return request.accept.best_match(offered) == MediaType.HTML


def error_page(status: int, headers: Mapping[str, str] | None = None) -> Response[str]:
    """The error as a page in Chinese, with the same status and headers (`Allow`, `Retry-After`)."""
    heading, message = _ERROR_WORDS.get(status, _OTHER_ERROR)
    retry_after = (headers or {}).get("Retry-After")
    if retry_after is not None:
        # What the header tells a program, in words (the value is a number of seconds).
        message = message.replace("请稍后再试", f"请在 {int(retry_after)} 秒后再试")
    return Response(
        _ERROR_PAGE.format(heading=heading, message=message),
        status_code=status,
        media_type=MediaType.HTML,
        headers={**PUBLIC_PAGE_HEADERS, **(headers or {})},
    )
