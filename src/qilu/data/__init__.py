"""The integrated data platform (一体化大数据平台): the resource catalog and its libraries."""
