"""The public web page (Chinese, server-rendered) over the search index."""
