"""A local Bitbucket Cloud: REST API 2.0 and git smart HTTP over a generated (or imported) world,
with Bitbucket's auth, scopes, paging, limits and failure modes. For the demo and the tests."""
