"""``User.objects.get(pk=…)``: the per-request user load runs prepared SQL, with the ORM's answers.

Django's auth calls it on every signed-in request; ``accounts.models.UserManager.get`` answers it
from SQL built once per process. These check it gives what the ORM's ``get`` gives.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import QuerySet

from tests.factories import UserFactory

User = get_user_model()


def orm_get(**kwargs):
    return QuerySet(User).get(**kwargs)


@pytest.mark.django_db
def test_same_user_and_fields_as_the_orm(django_assert_num_queries):
    user = UserFactory(email="Lookup@Example.com", first_name="Ann", is_staff=True)
    for key in (user.pk, str(user.pk)):
        with django_assert_num_queries(1):
            found = User.objects.get(pk=key)
        expected = orm_get(pk=user.pk)
        assert type(found) is User and found.pk == user.pk
        assert {f.attname: getattr(found, f.attname) for f in User._meta.concrete_fields} == {
            f.attname: getattr(expected, f.attname) for f in User._meta.concrete_fields
        }
        assert found._state.adding is False and found._state.db == "default"
    assert User.objects.get(id=user.pk) == user


@pytest.mark.django_db
@pytest.mark.parametrize("bad", [0, 10**6, "10000000", 2**70])
def test_missing_users_raise_does_not_exist(bad):
    UserFactory()
    with pytest.raises(User.DoesNotExist):
        User.objects.get(pk=bad)


@pytest.mark.django_db
@pytest.mark.parametrize("bad", ["abc", "1.5", "²"])
def test_malformed_ids_fail_as_the_orm_does(bad):
    with pytest.raises((ValueError, ValidationError)) as ours:
        User.objects.get(pk=bad)
    with pytest.raises((ValueError, ValidationError)) as orm:
        orm_get(pk=bad)
    assert type(ours.value) is type(orm.value)


@pytest.mark.django_db
def test_signed_in_pages_still_know_their_user(client):
    user = UserFactory(email="pages@example.com")
    client.force_login(user)
    response = client.get("/accounts/")
    assert response.status_code == 200 and response.wsgi_request.user == user
