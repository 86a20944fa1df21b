# Written from Protean's guides to commands and command handlers: a command handler
# returning a result (sync), the same command queued for dispatch (async), idempotency
# keys read from the command's metadata, and DuplicateCommandError.
from pgstore import Domain, handle
from pgstore.errors import DuplicateCommandError
from pgstore.fields import Float, Identifier, List, String

domain = Domain(name="Accounts")

charges = []


@domain.aggregate
class Account:
    email: String(required=True)
    name: String(required=True)
    tags: List(content_type=String)


@domain.command(part_of=Account)
class Register:
    email: String(required=True)
    name: String(required=True)


@domain.command(part_of=Account)
class Charge:
    account_id: Identifier(required=True)
    amount: Float(required=True)


@domain.command_handler(part_of=Account)
class AccountCommands:
    @handle(Register)
    def register(self, command: Register) -> str:
        account = Account(email=command.email, name=command.name)
        domain.repository_for(Account).add(account)
        return account.id

    @handle(Charge)
    def charge(self, command: Charge):
        key = command._metadata.headers.idempotency_key
        charges.append({"amount": command.amount, "idempotency_key": key})
        return key


def register_now(email, name):
    return domain.process(Register(email=email, name=name), asynchronous=False)


def register_later(email, name):
    return domain.process(Register(email=email, name=name))


def charge_once(account_id, amount, key):
    try:
        return domain.process(
            Charge(account_id=account_id, amount=amount),
            asynchronous=False,
            idempotency_key=key,
            raise_on_duplicate=True,
        )
    except DuplicateCommandError as exc:
        return ("duplicate", exc.original_result)


if __name__ == "__main__":
    domain.init(traverse=False)
    with domain.domain_context():
        account_id = register_now("jane@example.com", "Jane Doe")
        account = domain.repository_for(Account).get(account_id)
        print(account.email, account.name)
